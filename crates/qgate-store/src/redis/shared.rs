//! What instances tell each other: per-account pool state (`state:{id}` + the `events`
//! channel), sticky-session bindings, cluster-wide counters and the admin record.
//!
//! Records are generic over the state type (the pool's `SharedState` in the gateway), so
//! this crate stays independent of the pool. Each state record carries its origin
//! (instance id) and a stamp; the newer stamp wins, in the store (Lua) and in readers.

use futures_util::StreamExt;
use secrecy::zeroize::Zeroizing;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{EncryptionKey, Purpose, RedisError, RedisStore};

/// One account's shared state as stored and announced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRecord<T> {
    /// The instance that wrote it (instances ignore their own announcements).
    pub origin: String,
    /// When it was decided (Unix ms); later stamps win.
    pub stamp_ms: u64,
    pub state: T,
}

/// A message on the `events` channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClusterEvent<T> {
    /// An account's state changed on `record.origin`.
    State {
        account: String,
        record: StateRecord<T>,
    },
    /// The admin record is now at `version`.
    Admin { origin: String, version: u64 },
}

/// Cluster-wide counters of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u64,
    pub successes: u64,
    pub errors: u64,
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// The admin record, opened.
#[derive(Debug)]
pub struct AdminRecord {
    pub version: u64,
    /// The document as written (JSON); may hold credentials, so it is wiped on drop.
    pub document: Zeroizing<Vec<u8>>,
}

impl RedisStore {
    /// Store `record` for `account` unless a newer one is stored, and announce it on the
    /// `events` channel. Returns whether it was stored.
    pub async fn publish_state<T: Serialize>(
        &self,
        account: &str,
        record: &StateRecord<T>,
    ) -> Result<bool, RedisError> {
        let malformed = || RedisError::Malformed {
            op: "publish state",
            account: account.to_owned(),
        };
        let json = serde_json::to_string(record).map_err(|_| malformed())?;
        let message = serde_json::to_string(&serde_json::json!({
            "kind": "state",
            "account": account,
            "record": record,
        }))
        .map_err(|_| malformed())?;
        let mut conn = self.conn();
        let mut call = self.scripts().publish_state.prepare_invoke();
        call.key(self.keys().state(account))
            .arg(json)
            .arg(record.stamp_ms)
            .arg(self.keys().events())
            .arg(message);
        let stored: i64 = self
            .run("publish state", async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        Ok(stored == 1)
    }

    /// The stored states of `accounts` (missing or unreadable ones are left out).
    pub async fn read_states<T: DeserializeOwned>(
        &self,
        accounts: &[&str],
    ) -> Result<Vec<(String, StateRecord<T>)>, RedisError> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = ::redis::cmd("MGET");
        for account in accounts {
            cmd.arg(self.keys().state(account));
        }
        let mut conn = self.conn();
        let values: Vec<Option<Vec<u8>>> = self
            .run(
                "read states",
                async move { cmd.query_async(&mut conn).await },
            )
            .await?;
        Ok(accounts
            .iter()
            .zip(values)
            .filter_map(|(account, value)| {
                let record = serde_json::from_slice(&value?)
                    .inspect_err(|_| {
                        tracing::warn!(account, "ignoring a malformed state record in redis")
                    })
                    .ok()?;
                Some(((*account).to_owned(), record))
            })
            .collect())
    }

    /// Drop the stored states of accounts that no longer exist, so an account added again
    /// later under the same id (or an instance joining then) does not inherit them.
    pub async fn forget_states(&self, accounts: &[&str]) -> Result<(), RedisError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let mut cmd = ::redis::cmd("DEL");
        for account in accounts {
            cmd.arg(self.keys().state(account));
        }
        let mut conn = self.conn();
        self.run("forget states", async move {
            cmd.query_async::<i64>(&mut conn).await
        })
        .await
        .map(drop)
    }

    /// A dedicated connection subscribed to the `events` channel.
    pub async fn subscribe(&self) -> Result<Subscription, RedisError> {
        let client = self.client().clone();
        let channel = self.keys().events();
        let pubsub = self
            .run("subscribe", async move {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok(pubsub)
            })
            .await?;
        Ok(Subscription {
            messages: Box::pin(pubsub.into_on_message()),
        })
    }

    /// The account a session (see [`super::session_hash`]) is bound to.
    pub async fn sticky_get(&self, session_hash: &str) -> Result<Option<String>, RedisError> {
        let mut conn = self.conn();
        let key = self.keys().sticky(session_hash);
        self.run("sticky get", async move {
            ::redis::cmd("GET").arg(&key).query_async(&mut conn).await
        })
        .await
    }

    /// Bind a session to `account` for `ttl_ms` from now.
    pub async fn sticky_set(
        &self,
        session_hash: &str,
        account: &str,
        ttl_ms: u64,
    ) -> Result<(), RedisError> {
        let mut conn = self.conn();
        let key = self.keys().sticky(session_hash);
        let account = account.to_owned();
        self.run("sticky set", async move {
            ::redis::cmd("SET")
                .arg(&key)
                .arg(&account)
                .arg("PX")
                .arg(ttl_ms.max(1))
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    /// Add per-account deltas to the cluster-wide counters, in one round trip.
    pub async fn add_counts(&self, deltas: &[(&str, Counts)]) -> Result<(), RedisError> {
        let mut pipe = ::redis::pipe();
        let mut any = false;
        for (account, delta) in deltas {
            let key = self.keys().counts(account);
            for (field, by) in [
                ("requests", delta.requests),
                ("successes", delta.successes),
                ("errors", delta.errors),
            ] {
                if by > 0 {
                    pipe.cmd("HINCRBY").arg(&key).arg(field).arg(by).ignore();
                    any = true;
                }
            }
        }
        if !any {
            return Ok(());
        }
        let mut conn = self.conn();
        self.run("add counts", async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    /// Cluster-wide counters of `accounts`, in order.
    pub async fn read_counts(&self, accounts: &[&str]) -> Result<Vec<Counts>, RedisError> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for account in accounts {
            pipe.cmd("HMGET")
                .arg(self.keys().counts(account))
                .arg("requests")
                .arg("successes")
                .arg("errors");
        }
        let mut conn = self.conn();
        let rows: Vec<(Option<u64>, Option<u64>, Option<u64>)> = self
            .run(
                "read counts",
                async move { pipe.query_async(&mut conn).await },
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(requests, successes, errors)| Counts {
                requests: requests.unwrap_or(0),
                successes: successes.unwrap_or(0),
                errors: errors.unwrap_or(0),
            })
            .collect())
    }

    /// Replace the admin record with `document` (sealed: it may hold credentials), bump
    /// `admin:version` and announce it. Returns the new version.
    pub async fn write_admin(
        &self,
        key: &EncryptionKey,
        origin: &str,
        document: &[u8],
    ) -> Result<u64, RedisError> {
        self.write_admin_with(key, origin, document, None).await
    }

    /// [`RedisStore::write_admin`] only if the stored record is still at version `base`
    /// (the one the document was derived from) or Redis holds none (it lost its data);
    /// `Ok(0)` when another instance wrote in between.
    pub async fn write_admin_based_on(
        &self,
        key: &EncryptionKey,
        origin: &str,
        document: &[u8],
        base: u64,
    ) -> Result<u64, RedisError> {
        self.write_admin_with(key, origin, document, Some(base))
            .await
    }

    async fn write_admin_with(
        &self,
        key: &EncryptionKey,
        origin: &str,
        document: &[u8],
        base: Option<u64>,
    ) -> Result<u64, RedisError> {
        let sealed = key.seal(Purpose::AdminAccounts, self.keys().prefix(), document)?;
        let mut conn = self.conn();
        let mut call = self.scripts().write_admin.prepare_invoke();
        call.key(self.keys().admin_accounts())
            .key(self.keys().admin_version())
            .arg(sealed)
            .arg(origin)
            .arg(self.keys().events())
            .arg(base.map_or_else(|| "-".to_owned(), |v| v.to_string()));
        self.run_slow(
            "write admin",
            async move { call.invoke_async(&mut conn).await },
        )
        .await
    }

    /// The admin record and its version, if one was ever written.
    pub async fn read_admin(&self, key: &EncryptionKey) -> Result<Option<AdminRecord>, RedisError> {
        let mut conn = self.conn();
        let names = [self.keys().admin_accounts(), self.keys().admin_version()];
        let (sealed, version): (Option<Vec<u8>>, Option<u64>) = self
            .run_slow("read admin", async move {
                ::redis::cmd("MGET")
                    .arg(&names)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let document = key.open(Purpose::AdminAccounts, self.keys().prefix(), &sealed)?;
        Ok(Some(AdminRecord {
            version: version.unwrap_or(0),
            document,
        }))
    }

    /// The admin record's version (0 when none was written): cheap to poll.
    pub async fn admin_version(&self) -> Result<u64, RedisError> {
        let mut conn = self.conn();
        let name = self.keys().admin_version();
        let version: Option<u64> = self
            .run("admin version", async move {
                ::redis::cmd("GET").arg(&name).query_async(&mut conn).await
            })
            .await?;
        Ok(version.unwrap_or(0))
    }
}

/// Messages from the `events` channel. Ends (`None`) when the connection is lost; the
/// caller re-subscribes and reconciles, since messages sent meanwhile are gone.
pub struct Subscription {
    messages: std::pin::Pin<Box<dyn futures_util::Stream<Item = ::redis::Msg> + Send>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next well-formed event; malformed messages are logged and skipped.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Option<ClusterEvent<T>> {
        loop {
            let message = self.messages.next().await?;
            match serde_json::from_slice(message.get_payload_bytes()) {
                Ok(event) => return Some(event),
                Err(err) => {
                    tracing::warn!(error = %err, "ignoring a malformed message on the events channel")
                }
            }
        }
    }
}
