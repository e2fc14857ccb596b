//! The request path's cluster step: pick an account locally, then admit the request under
//! the account's limits across instances (one Lua call, only for accounts that have
//! limits); a refusal excludes the account and selection runs again. Sticky bindings are
//! read from Redis before selection and written after it, off the critical path.
//!
//! Without a cluster, [`select_slot`] is exactly `Pool::select` + `Slot::new`. While Redis
//! is known to be down the request path does not try it at all (each try would cost up to
//! the operation timeout); the reconcile loop notices when it is back.

use super::{Cluster, LEASE_TTL};
use crate::dispatch::Slot;
use crate::state::{AppState, Runtime};
use qgate_pool::{AccountId, NoAccount, SelectRequest};
use qgate_store::redis::{Acquire, session_hash};
use std::fmt;
use std::sync::Arc;

/// A request's admission to an account across instances; dropping it gives the
/// concurrency unit back (spawned: drop cannot wait).
pub struct ClusterLease {
    cluster: Arc<Cluster>,
    account: AccountId,
    lease_id: String,
}

impl fmt::Debug for ClusterLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterLease")
            .field("account", &self.account)
            .field("lease_id", &self.lease_id)
            .finish()
    }
}

impl Drop for ClusterLease {
    fn drop(&mut self) {
        self.cluster.leases.lock().remove(&self.lease_id);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime (process exit): the lease expires by itself.
            return;
        };
        let cluster = self.cluster.clone();
        let account = self.account.clone();
        let lease_id = std::mem::take(&mut self.lease_id);
        runtime.spawn(async move {
            if let Err(err) = cluster.redis.release(account.as_str(), &lease_id).await {
                tracing::debug!(account = %account, error = %err, "lease not released; it expires by itself");
            }
        });
    }
}

enum Admission {
    Granted(Option<ClusterLease>),
    Refused,
}

impl Cluster {
    async fn admit(self: &Arc<Self>, rt: &Runtime, account: &AccountId, now_ms: u64) -> Admission {
        let Some(settings) = rt.accounts.get(account).map(|a| &a.config.settings) else {
            return Admission::Granted(None);
        };
        if settings.max_concurrency.is_none() && settings.rpm_limit.is_none() || !self.is_redis_up()
        {
            return Admission::Granted(None);
        }
        let lease_id = uuid::Uuid::new_v4().simple().to_string();
        let acquired = self
            .redis
            .acquire(
                account.as_str(),
                settings.max_concurrency,
                settings.rpm_limit,
                &lease_id,
                LEASE_TTL,
                now_ms,
            )
            .await;
        match acquired {
            Ok(Acquire::Granted) => {
                self.leases.lock().insert(lease_id.clone(), account.clone());
                Admission::Granted(Some(ClusterLease {
                    cluster: self.clone(),
                    account: account.clone(),
                    lease_id,
                }))
            }
            Ok(Acquire::AtConcurrency | Acquire::AtRpm { .. }) => Admission::Refused,
            // Redis unreachable: the local limits (already applied) are all we have.
            Err(_) => Admission::Granted(None),
        }
    }
}

/// The account Redis binds `session` to, when sticky sessions are on.
pub async fn sticky_hint(
    state: &AppState,
    rt: &Runtime,
    session: Option<&str>,
) -> Option<AccountId> {
    let cluster = state.cluster.as_ref().filter(|c| c.is_redis_up())?;
    let session = session?;
    rt.pool.config().sticky_ttl_ms?;
    let bound = cluster
        .redis
        .sticky_get(&session_hash(session))
        .await
        .ok()??;
    AccountId::new(&bound).ok()
}

/// Select an account for one attempt and admit it across instances. `refused` collects
/// accounts another instance has filled up; when nothing else fits the answer is
/// `AllBusy` (wait in the queue, then clear `refused` and try again).
pub async fn select_slot(
    state: &AppState,
    rt: &Runtime,
    req: &SelectRequest<'_>,
    sticky: Option<&AccountId>,
    refused: &mut Vec<AccountId>,
    now_ms: u64,
) -> Result<Slot, NoAccount> {
    let Some(cluster) = &state.cluster else {
        return rt
            .pool
            .select(req, now_ms)
            .map(|lease| Slot::new(lease, state.clone()));
    };
    // Bounded: every refusal excludes one more account.
    for _ in 0..=rt.pool.len() {
        let mut exclude: Vec<AccountId> = req.exclude.to_vec();
        exclude.extend(refused.iter().cloned());
        let pinned = sticky
            .filter(|bound| !exclude.contains(bound))
            .and_then(|bound| {
                let others: Vec<AccountId> = rt
                    .pool
                    .account_ids()
                    .filter(|id| *id != bound)
                    .cloned()
                    .collect();
                rt.pool
                    .select(
                        &SelectRequest {
                            exclude: &others,
                            ..*req
                        },
                        now_ms,
                    )
                    .ok()
            });
        let selected = match pinned {
            Some(lease) => Ok(lease),
            None => rt.pool.select(
                &SelectRequest {
                    exclude: &exclude,
                    ..*req
                },
                now_ms,
            ),
        };
        let lease = match selected {
            Ok(lease) => lease,
            Err(_) if !refused.is_empty() => return Err(NoAccount::AllBusy),
            Err(other) => return Err(other),
        };
        let mut slot = Slot::new(lease, state.clone());
        match cluster.admit(rt, slot.account(), now_ms).await {
            Admission::Granted(lease) => {
                if let Some(lease) = lease {
                    slot.attach_cluster_lease(lease);
                }
                if let (Some(session), Some(ttl)) = (req.session, rt.pool.config().sticky_ttl_ms) {
                    bind_sticky(cluster, session, slot.account(), ttl);
                }
                return Ok(slot);
            }
            Admission::Refused => refused.push(slot.account().clone()),
        }
    }
    Err(NoAccount::AllBusy)
}

fn bind_sticky(cluster: &Arc<Cluster>, session: &str, account: &AccountId, ttl_ms: u64) {
    if !cluster.is_redis_up() {
        return;
    }
    let cluster = cluster.clone();
    let hash = session_hash(session);
    let account = account.clone();
    tokio::spawn(async move {
        let _ = cluster
            .redis
            .sticky_set(&hash, account.as_str(), ttl_ms)
            .await;
    });
}
