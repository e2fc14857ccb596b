//! Tokens in Redis: the sealed token record (`tok:{id}`), the fenced refresh lock
//! (`lock:refresh:{id}` + `fence:{id}`), and [`RedisTokenStore`], the [`TokenStore`] that
//! layers them over the local files.
//!
//! Record: a hash with `data` (the token, sealed with [`Purpose::Token`] and the account
//! id), `exp` (access-token expiry in ms, 0 when none: lets scripts compare records
//! without the key), `fence` (of the holder that wrote it, 0 outside the lock) and `at`
//! (write time, ms).
//!
//! Durability first: `save` writes the local file *before* Redis, so a rotated refresh
//! token survives a Redis outage; `load` takes whichever of the two is newer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use jiff::Timestamp;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{EncryptionKey, Purpose, RedisError, RedisStore};
use crate::{
    BoxFuture, CachedToken, Fence, FileTokenStore, RefreshLock, StoreError, TokenStore,
    check_account_id,
};

/// A token record as read from Redis.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub token: CachedToken,
    /// The fence of the lock holder that wrote it; 0 when written outside the lock.
    pub fence: u64,
    /// When it was written (Unix ms, the writer's clock).
    pub written_ms: u64,
}

/// The sealed plaintext. Field names are short on purpose: they are inside the ciphertext.
#[derive(Deserialize)]
struct SealedToken {
    access_token: Option<SecretString>,
    refresh_token: SecretString,
    expires_at_ms: Option<i64>,
}

#[derive(Serialize)]
struct SealedTokenOut<'a> {
    access_token: Option<&'a str>,
    refresh_token: &'a str,
    expires_at_ms: Option<i64>,
}

fn now_ms() -> u64 {
    u64::try_from(Timestamp::now().as_millisecond()).unwrap_or(0)
}

fn expiry_ms(token: &CachedToken) -> i64 {
    token
        .access_token
        .as_ref()
        .and(token.expires_at)
        .map_or(0, |at| at.as_millisecond().max(0))
}

impl RedisStore {
    /// The stored token of `account`, opened with `key`.
    pub async fn load_token(
        &self,
        key: &EncryptionKey,
        account: &str,
    ) -> Result<Option<StoredToken>, RedisError> {
        let mut conn = self.conn();
        let name = self.keys().token(account);
        let (data, fence, at): (Option<Vec<u8>>, Option<u64>, Option<u64>) = self
            .run_slow("load token", async move {
                ::redis::cmd("HMGET")
                    .arg(&name)
                    .arg("data")
                    .arg("fence")
                    .arg("at")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let Some(data) = data else {
            return Ok(None);
        };
        let plain = key.open(Purpose::Token, account, &data)?;
        let sealed: SealedToken =
            serde_json::from_slice(&plain).map_err(|_| RedisError::Malformed {
                op: "load token",
                account: account.to_owned(),
            })?;
        let expires_at = sealed
            .expires_at_ms
            .and_then(|ms| Timestamp::from_millisecond(ms).ok());
        Ok(Some(StoredToken {
            token: CachedToken {
                access_token: sealed.access_token.filter(|_| expires_at.is_some()),
                refresh_token: sealed.refresh_token,
                expires_at,
            },
            fence: fence.unwrap_or(0),
            written_ms: at.unwrap_or(0),
        }))
    }

    /// Store `token` for `account`. With a fence: only while that fence is the newest one
    /// handed out. Without: only if the stored record's access token does not expire
    /// later. Returns whether it was written.
    pub async fn save_token(
        &self,
        key: &EncryptionKey,
        account: &str,
        token: &CachedToken,
        fence: Fence,
    ) -> Result<bool, RedisError> {
        check_account_id(account).map_err(|_| RedisError::Malformed {
            op: "save token",
            account: account.chars().take(64).collect(),
        })?;
        let exp = expiry_ms(token);
        let plain = Zeroizing::new(
            serde_json::to_vec(&SealedTokenOut {
                access_token: token.access_token.as_ref().map(ExposeSecret::expose_secret),
                refresh_token: token.refresh_token.expose_secret(),
                expires_at_ms: (exp > 0).then_some(exp),
            })
            .map_err(|_| RedisError::Malformed {
                op: "save token",
                account: account.to_owned(),
            })?,
        );
        let data = key.seal(Purpose::Token, account, &plain)?;
        let mut conn = self.conn();
        let keys = self.keys();
        let written: i64 = match fence.value() {
            Some(fence) => {
                let mut call = self.scripts().save_token_fenced.prepare_invoke();
                call.key(keys.token(account))
                    .key(keys.fence(account))
                    .arg(fence)
                    .arg(exp)
                    .arg(data)
                    .arg(now_ms());
                self.run_slow(
                    "save token",
                    async move { call.invoke_async(&mut conn).await },
                )
                .await?
            }
            None => {
                let mut call = self.scripts().save_token_if_newer.prepare_invoke();
                call.key(keys.token(account))
                    .arg(exp)
                    .arg(data)
                    .arg(now_ms());
                self.run_slow(
                    "save token",
                    async move { call.invoke_async(&mut conn).await },
                )
                .await?
            }
        };
        Ok(written == 1)
    }

    pub async fn remove_token(&self, account: &str) -> Result<(), RedisError> {
        let mut conn = self.conn();
        let name = self.keys().token(account);
        self.run_slow("remove token", async move {
            ::redis::cmd("DEL")
                .arg(&name)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(drop)
    }

    /// Take `account`'s refresh lock for `ttl`: `Some(fence)` when granted, `None` when
    /// another holder has it.
    pub async fn lock_refresh(
        &self,
        account: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, RedisError> {
        let mut conn = self.conn();
        let mut call = self.scripts().lock_refresh.prepare_invoke();
        call.key(self.keys().refresh_lock(account))
            .key(self.keys().fence(account))
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        let fence: u64 = self
            .run_slow(
                "lock refresh",
                async move { call.invoke_async(&mut conn).await },
            )
            .await?;
        Ok((fence > 0).then_some(fence))
    }

    /// Release the lock if `fence` still holds it. Returns whether it did.
    pub async fn unlock_refresh(&self, account: &str, fence: u64) -> Result<bool, RedisError> {
        let mut conn = self.conn();
        let mut call = self.scripts().unlock_refresh.prepare_invoke();
        call.key(self.keys().refresh_lock(account)).arg(fence);
        let released: i64 = self
            .run_slow("unlock refresh", async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        Ok(released == 1)
    }
}

/// How long after an outage a refused refresh token may still be one another instance
/// rotated meanwhile and has not shared yet (instances share such tokens within a
/// reconcile tick of reaching Redis again).
const SETTLE_AFTER_OUTAGE: Duration = Duration::from_secs(10);

/// Tokens shared by all instances, layered over this instance's local files.
///
/// Exists only with an [`EncryptionKey`]: without one the gateway keeps tokens local.
#[derive(Debug, Clone)]
pub struct RedisTokenStore {
    local: FileTokenStore,
    redis: RedisStore,
    key: EncryptionKey,
    /// Accounts whose newest token was saved only locally (Redis unreachable).
    unsynced: Arc<Mutex<BTreeSet<String>>>,
}

impl RedisTokenStore {
    pub fn new(local: FileTokenStore, redis: RedisStore, key: EncryptionKey) -> Self {
        RedisTokenStore {
            local,
            redis,
            key,
            unsynced: Arc::default(),
        }
    }

    /// Write each token kept only locally during an outage to Redis (unless Redis holds
    /// a newer one); those that still fail stay queued.
    pub async fn resync_now(&self) {
        let pending: Vec<String> = self.unsynced.lock().iter().cloned().collect();
        for account in pending {
            let token = match self.local.load(&account).await {
                Ok(Some(token)) => token,
                Ok(None) => {
                    self.unsynced.lock().remove(&account);
                    continue;
                }
                Err(err) => {
                    tracing::warn!(account, error = %err, "could not read the local token to share it again");
                    continue;
                }
            };
            match self
                .redis
                .save_token(&self.key, &account, &token, Fence::UNCOORDINATED)
                .await
            {
                Ok(written) => {
                    self.unsynced.lock().remove(&account);
                    tracing::info!(
                        account,
                        written,
                        "token saved during the redis outage shared again"
                    );
                }
                Err(err) => {
                    tracing::debug!(account, error = %err, "token still kept locally only");
                    return;
                }
            }
        }
    }

    pub fn local(&self) -> &FileTokenStore {
        &self.local
    }

    async fn load_both(&self, account: &str) -> Result<Option<CachedToken>, StoreError> {
        let local = self.local.load(account).await;
        let shared = match self.redis.load_token(&self.key, account).await {
            Ok(stored) => stored.map(|s| s.token),
            Err(err) => {
                if !err.is_outage() {
                    tracing::warn!(account, error = %err, "ignoring the token record in redis");
                }
                None
            }
        };
        match (local, shared) {
            (Ok(Some(local)), Some(shared)) => Ok(Some(newer(local, shared))),
            (Ok(None), Some(shared)) | (Err(_), Some(shared)) => Ok(Some(shared)),
            (local, None) => local,
        }
    }

    async fn save_both(
        &self,
        account: &str,
        token: &CachedToken,
        fence: Fence,
    ) -> Result<(), StoreError> {
        // Local first: if Redis is down, or we crash before it answers, the rotated
        // refresh token is already on disk.
        let local = self.local.save(account, token).await;
        match self
            .redis
            .save_token(&self.key, account, token, fence)
            .await
        {
            Ok(true) => {
                self.unsynced.lock().remove(account);
            }
            Ok(false) if fence.value().is_some() => {
                // Our lock expired, or Redis lost its data and handed the fence out
                // anew. Our exchange succeeded, so with rotating refresh tokens ours may
                // be the only valid one: offer it again outside the lock, where it is kept
                // only if no newer token is stored.
                tracing::warn!(
                    account,
                    "the refresh lock was lost before the token was saved; offering it to redis again unless a newer one is there"
                );
                self.unsynced.lock().insert(account.to_owned());
            }
            Ok(false) => tracing::debug!(account, "redis holds a newer token; not overwritten"),
            Err(err) => {
                tracing::debug!(account, error = %err, "token kept locally only");
                self.unsynced.lock().insert(account.to_owned());
            }
        }
        local
    }
}

/// The record whose access token expires later (the local one on a tie: same token).
fn newer(local: CachedToken, shared: CachedToken) -> CachedToken {
    let expiry = |t: &CachedToken| t.access_token.as_ref().and(t.expires_at);
    if expiry(&shared) > expiry(&local) {
        shared
    } else {
        local
    }
}

impl TokenStore for RedisTokenStore {
    fn load<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<CachedToken>, StoreError>> {
        Box::pin(self.load_both(account))
    }

    fn save<'a>(
        &'a self,
        account: &'a str,
        token: &'a CachedToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.save_both(account, token, Fence::UNCOORDINATED))
    }

    fn remove<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let local = self.local.remove(account).await;
            if let Err(err) = self.redis.remove_token(account).await {
                tracing::warn!(account, error = %err, "could not remove the token record from redis");
            }
            local
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn lock_refresh<'a>(&'a self, account: &'a str, ttl: Duration) -> BoxFuture<'a, RefreshLock> {
        Box::pin(async move {
            match self.redis.lock_refresh(account, ttl).await {
                Ok(Some(fence)) => RefreshLock::Granted(Fence::new(fence)),
                Ok(None) => RefreshLock::Busy,
                // Unreachable: refreshing alone beats not refreshing at all.
                Err(_) => RefreshLock::Granted(Fence::UNCOORDINATED),
            }
        })
    }

    fn unlock_refresh<'a>(&'a self, account: &'a str, fence: Fence) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(fence) = fence.value()
                && let Err(err) = self.redis.unlock_refresh(account, fence).await
            {
                // The lock expires by itself.
                tracing::debug!(account, error = %err, "could not release the refresh lock");
            }
        })
    }

    fn save_fenced<'a>(
        &'a self,
        account: &'a str,
        token: &'a CachedToken,
        fence: Fence,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.save_both(account, token, fence))
    }

    fn recently_unreachable(&self) -> bool {
        self.redis.health().unreachable_within(SETTLE_AFTER_OUTAGE)
    }

    fn resync(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.resync_now())
    }

    fn mark_unsynced(&self, accounts: &[&str]) {
        let mut unsynced = self.unsynced.lock();
        unsynced.extend(accounts.iter().map(|a| (*a).to_owned()));
    }
}
