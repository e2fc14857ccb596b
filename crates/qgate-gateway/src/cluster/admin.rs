//! Admin changes to the account set (add, remove, patch) across instances: the instance
//! that made one writes the whole `AccountChanges` document to `admin:accounts` (sealed,
//! since added accounts carry credentials), bumps `admin:version` and announces it;
//! every other instance installs the document over its configuration, exactly as a
//! local admin change is installed, and saves it to its state file.
//!
//! Needs the encryption key: without one nothing here is written or read, and each
//! instance keeps its own admin changes. Enable, disable and reset are pool state and
//! travel with it (`cluster/sync.rs`), key or not.
//!
//! Two instances changing accounts at once (or during an outage): writes are
//! compare-and-set on the version the writer last saw; the one refused merges the other's
//! document with its own (`AccountChanges::merge3`) and writes again, so both survive.
//! Two edits of the *same* account: the one written last wins.
//!
//! Every document names the version it was based on. When Redis loses its data, a
//! document refilled by another instance may not descend from the one held here (it never
//! saw this instance's last write): it is then merged three-way with their common ancestor
//! from the recent history, and the merge is shared, instead of replacing what only this
//! instance still knows.

use super::Cluster;
use crate::reload::{self, AccountChanges};
use crate::state::AppState;
use qgate_pool::AccountId;
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;

/// Documents kept as possible common ancestors.
const HISTORY: usize = 32;

/// The shared document: the account changes and the version they were based on (0 in
/// documents written before this field existed: no known ancestor).
#[derive(Serialize, Deserialize)]
struct SharedDoc {
    #[serde(flatten)]
    changes: AccountChanges,
    #[serde(default)]
    based_on: u64,
}

/// A newer document read from Redis.
struct Incoming {
    version: u64,
    based_on: u64,
    changes: AccountChanges,
}

impl Cluster {
    /// Share this instance's unpublished account changes, or refill a Redis that lost the
    /// admin record. The pending flags are taken and, on failure, put back inside the
    /// turn: an install in between would otherwise see nothing pending and overwrite the
    /// changes with the other instance's document.
    pub(super) async fn publish_admin(&self, state: &AppState) {
        let _turn = self.admin_turn.lock().await;
        if self.admin_dirty.swap(false, Ordering::AcqRel) {
            self.admin_refill.store(false, Ordering::Release);
            if !self.write_admin(state, false).await {
                self.admin_dirty.store(true, Ordering::Release);
            }
        } else if self.admin_refill.swap(false, Ordering::AcqRel)
            && !self.write_admin(state, true).await
        {
            self.admin_refill.store(true, Ordering::Release);
        }
    }

    /// Write this instance's account changes; false when it must be retried. With
    /// `refill`, only into a Redis that has no admin record (it lost its data): the first
    /// instance to refill wins, the others install its document. Called in the turn.
    async fn write_admin(&self, state: &AppState, refill: bool) -> bool {
        let Some(key) = &self.key else {
            return true;
        };
        let shared = SharedDoc {
            changes: state.account_admin.changes(),
            based_on: self.held_version(),
        };
        let document = match serde_json::to_vec(&shared) {
            Ok(document) => secrecy::zeroize::Zeroizing::new(document),
            Err(err) => {
                tracing::error!(error = %err, "could not encode the admin account changes");
                return true;
            }
        };
        // Based on the last document seen here: if another instance wrote since, nothing
        // is written; its document is read and merged with ours, and we try again.
        let base = self.admin_version.load(Ordering::Acquire);
        let written = self
            .redis
            .write_admin_based_on(key, &self.instance, &document, base)
            .await;
        match written {
            Ok(0) if refill => {
                tracing::debug!("another instance refilled the admin record first");
                self.wake_reconciler.notify_one();
                true
            }
            Ok(0) => {
                tracing::info!("another instance changed the accounts first; merging and retrying");
                self.wake_reconciler.notify_one();
                false
            }
            Ok(version) => {
                self.admin_version.fetch_max(version, Ordering::AcqRel);
                self.remember(version, shared.changes);
                self.forget_removed(state).await;
                tracing::info!(
                    version,
                    "admin account changes shared with the other instances"
                );
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not share the admin account changes; retrying");
                false
            }
        }
    }

    /// Install the stored admin document if it is newer than the last one seen.
    pub(super) async fn apply_admin(&self, state: &AppState) {
        let _turn = self.admin_turn.lock().await;
        // No local change in the middle of this: one made now is either installed
        // already and marked pending (merged below) or made after, on top of this.
        let _one_at_a_time = state.account_admin.apply.lock().await;
        let Some(incoming) = self.read_newer_admin().await else {
            return;
        };
        // Changes made here and not published yet (Redis was down, or the write is still
        // to come) are merged in, not overwritten; they stay pending and go out with the
        // merged document. So is a document that does not descend from the one held here
        // (Redis lost the data our last write was in, and another instance refilled it):
        // merged with the common ancestor, and the merge shared.
        let dirty = self.admin_dirty.load(Ordering::Acquire);
        let ours = state.account_admin.changes();
        let (mut changes, share) = {
            let history = self.admin_history.lock();
            merge_incoming(&history, &ours, dirty, &incoming)
        };
        if share {
            tracing::info!(
                based_on = incoming.based_on,
                "another instance's admin document misses changes held here; merged"
            );
            self.admin_dirty.store(true, Ordering::Release);
            self.wake_publisher.notify_one();
        } else if dirty {
            tracing::info!("merged unpublished admin changes with another instance's");
        }
        self.remember(incoming.version, incoming.changes);
        let cfg = state.config.load_full();
        changes.reconcile(&cfg);
        let before: HashSet<AccountId> = state.runtime().accounts.keys().cloned().collect();
        if let Err(err) = reload::install(state, cfg, changes).await {
            tracing::error!(error = %err, "could not install the admin changes of another instance");
            return;
        }
        let rt = state.runtime();
        self.forget_removed(state).await;
        if let Err(err) = state.account_admin.save(&rt).await {
            tracing::error!(error = %err, "saving the state file after a remote admin change failed");
        }
        for gone in before.iter().filter(|id| !rt.accounts.contains_key(*id)) {
            // Its cached tokens are credentials nobody here will use any more.
            if let Err(err) = state.account_admin.deps.store.remove(gone.as_str()).await {
                tracing::warn!(account = %gone, error = %err, "removing the token cache failed");
            }
        }
        tracing::info!(
            accounts = rt.accounts.len(),
            "installed admin account changes from another instance"
        );
    }

    /// Accounts gone from the account set: forget what was shared about them, so the
    /// same id added again starts fresh everywhere.
    async fn forget_removed(&self, state: &AppState) {
        let rt = state.runtime();
        let gone: Vec<AccountId> = {
            let mut seen = self.seen.lock();
            let gone: Vec<AccountId> = seen
                .keys()
                .filter(|id| !rt.accounts.contains_key(*id))
                .cloned()
                .collect();
            for id in &gone {
                seen.remove(id);
            }
            gone
        };
        {
            let mut dirty = self.dirty.lock();
            dirty.retain(|id, _| rt.accounts.contains_key(id));
        }
        let ids: Vec<&str> = gone.iter().map(AccountId::as_str).collect();
        if let Err(err) = self.redis.forget_states(&ids).await {
            tracing::debug!(error = %err, "stale account states stay in redis until overwritten");
        }
    }

    /// The stored admin document when it is newer than the last one seen here (marking
    /// it seen), as the base of later merges. Used at startup, before the pool is built.
    pub async fn load_admin_changes(&self) -> Option<AccountChanges> {
        let incoming = self.read_newer_admin().await?;
        self.remember(incoming.version, incoming.changes.clone());
        Some(incoming.changes)
    }

    /// The version of the document held here (last published or installed; 0 if none).
    fn held_version(&self) -> u64 {
        held(&self.admin_history.lock())
    }

    fn remember(&self, version: u64, changes: AccountChanges) {
        let mut history = self.admin_history.lock();
        history.retain(|(v, _)| *v < version);
        history.push_back((version, changes));
        while history.len() > HISTORY {
            history.pop_front();
        }
    }

    /// The stored admin document when it is newer than the last one seen here (marking
    /// it seen).
    async fn read_newer_admin(&self) -> Option<Incoming> {
        let key = self.key.as_ref()?;
        let record = match self.redis.read_admin(key).await {
            Ok(record) => record?,
            Err(err) => {
                if !err.is_outage() {
                    tracing::warn!(error = %err, "ignoring the admin record in redis");
                }
                return None;
            }
        };
        if record.version <= self.admin_version.load(Ordering::Acquire) {
            return None;
        }
        self.admin_version
            .fetch_max(record.version, Ordering::AcqRel);
        match serde_json::from_slice::<SharedDoc>(&record.document) {
            Ok(doc) => Some(Incoming {
                version: record.version,
                based_on: doc.based_on,
                changes: doc.changes,
            }),
            Err(_) => {
                // serde's message could quote the document, which holds credentials.
                tracing::warn!(
                    version = record.version,
                    "the admin record in redis is not an account-changes document; ignored"
                );
                None
            }
        }
    }
}

/// The version of the newest document in `history` (0 if none).
fn held(history: &VecDeque<(u64, AccountChanges)>) -> u64 {
    history.back().map_or(0, |(v, _)| *v)
}

/// What to install for `incoming` given the documents held here (`history`, newest last),
/// the account changes in force here (`ours`) and whether some of them are unpublished;
/// and whether the result must be shared because `incoming` lacks changes held here.
fn merge_incoming(
    history: &VecDeque<(u64, AccountChanges)>,
    ours: &AccountChanges,
    dirty: bool,
    incoming: &Incoming,
) -> (AccountChanges, bool) {
    let descends = incoming.based_on >= held(history);
    if descends && !dirty {
        return (incoming.changes.clone(), false);
    }
    // The common ancestor: the newest document held here at or before the one theirs was
    // based on (the one held now, when theirs descends from it); the oldest kept when
    // theirs is older than all of them — more of ours then counts as changed, so nothing
    // held here is dropped.
    let at = if descends {
        u64::MAX
    } else {
        incoming.based_on
    };
    let base = history
        .iter()
        .rev()
        .find(|(v, _)| *v <= at)
        .or(history.front())
        .map(|(_, c)| c.clone())
        .unwrap_or_default();
    (
        AccountChanges::merge3(&base, ours, &incoming.changes),
        !descends,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reload::NewAccount;

    fn doc(ids: &[&str]) -> AccountChanges {
        AccountChanges {
            added: ids
                .iter()
                .map(|id| NewAccount {
                    id: (*id).to_owned(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn ids(c: &AccountChanges) -> Vec<&str> {
        let mut v: Vec<&str> = c.added.iter().map(|a| a.id.as_str()).collect();
        v.sort_unstable();
        v
    }

    fn incoming(version: u64, based_on: u64, changes: AccountChanges) -> Incoming {
        Incoming {
            version,
            based_on,
            changes,
        }
    }

    #[test]
    fn a_document_that_descends_from_ours_is_installed_as_it_is() {
        let history = VecDeque::from([(10, doc(&["a"]))]);
        let (got, share) = merge_incoming(
            &history,
            &doc(&["a"]),
            false,
            &incoming(11, 10, doc(&["b"])),
        );
        assert_eq!(
            ids(&got),
            ["b"],
            "their removal of a and add of b both stand"
        );
        assert!(!share);
    }

    #[test]
    fn a_refill_that_never_saw_our_last_write_keeps_what_it_added() {
        // We wrote v20 (adding x) on top of v10; Redis lost it; the other instance, which
        // only ever saw v10, refilled its own document (adding y) as v30.
        let history = VecDeque::from([(10, doc(&["a"])), (20, doc(&["a", "x"]))]);
        let (got, share) = merge_incoming(
            &history,
            &doc(&["a", "x"]),
            false,
            &incoming(30, 10, doc(&["a", "y"])),
        );
        assert_eq!(ids(&got), ["a", "x", "y"]);
        assert!(
            share,
            "the merge must be shared: the refilled document lacks x"
        );
    }

    #[test]
    fn a_removal_made_on_top_of_what_we_hold_stands() {
        // The other instance removed a on top of v10, the version we hold.
        let history = VecDeque::from([(10, doc(&["a", "b"]))]);
        let (got, share) = merge_incoming(
            &history,
            &doc(&["a", "b"]),
            false,
            &incoming(30, 10, doc(&["b"])),
        );
        assert_eq!(ids(&got), ["b"]);
        assert!(!share, "it descends from what we hold: installed as it is");
    }

    #[test]
    fn unpublished_changes_merge_with_the_document_held_now_as_base() {
        let history = VecDeque::from([(10, doc(&["a"]))]);
        // We added x (not yet published); the other wrote v11 on top of v10, adding y.
        let (got, share) = merge_incoming(
            &history,
            &doc(&["a", "x"]),
            true,
            &incoming(11, 10, doc(&["a", "y"])),
        );
        assert_eq!(ids(&got), ["a", "x", "y"]);
        assert!(
            !share,
            "pending changes go out through the dirty flag already"
        );
    }

    #[test]
    fn an_ancestor_older_than_the_history_falls_back_to_the_oldest_kept() {
        let history = VecDeque::from([(10, doc(&["a"])), (20, doc(&["a", "x"]))]);
        let (got, share) = merge_incoming(
            &history,
            &doc(&["a", "x"]),
            false,
            &incoming(30, 0, doc(&["y"])),
        );
        // Against v10, x is ours and stays; a was in both v10 and ours, so their removal of
        // it stands; y is theirs.
        assert_eq!(ids(&got), ["x", "y"]);
        assert!(share);
    }
}
