//! The backend-neutral token cache contract: what is cached per account ([`CachedToken`]),
//! the trait every backend implements ([`TokenStore`]), the cross-instance refresh lock
//! it may offer ([`RefreshLock`], [`Fence`]) and the key check they share.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use secrecy::SecretString;

use crate::{BoxFuture, StoreError};

/// What survives a restart for one account.
///
/// The refresh token is the precious part: upstreams may rotate it, and losing the rotated
/// one can lock the account out. The access token is only a shortcut and is dropped by
/// readers once `expires_at` has passed.
#[derive(Clone)]
pub struct CachedToken {
    pub access_token: Option<SecretString>,
    pub refresh_token: SecretString,
    pub expires_at: Option<Timestamp>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("refresh_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Per-account token persistence. Implementations must make `save` atomic: a concurrent
/// or later `load` sees either the previous or the new token, never a mix or nothing.
///
/// Futures are boxed so the trait is dyn-compatible (`Arc<dyn TokenStore>`).
pub trait TokenStore: Send + Sync + fmt::Debug + 'static {
    /// The cached token of `account`, or `None` when nothing is cached.
    fn load<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<CachedToken>, StoreError>>;

    /// Replace the cached token of `account`.
    fn save<'a>(
        &'a self,
        account: &'a str,
        token: &'a CachedToken,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Forget `account` (removing a missing entry is not an error).
    fn remove<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Whether other gateway instances read and write the same tokens. Only then is a
    /// refresh coordinated through [`TokenStore::lock_refresh`] and the stored record
    /// worth polling while another instance refreshes.
    fn is_shared(&self) -> bool {
        false
    }

    /// Try to become the one instance refreshing `account` for at most `ttl`. A store
    /// that cannot coordinate (a local one, or a shared one that is unreachable) grants
    /// an [uncoordinated](Fence::UNCOORDINATED) lock: refreshing locally is then right.
    fn lock_refresh<'a>(&'a self, _account: &'a str, _ttl: Duration) -> BoxFuture<'a, RefreshLock> {
        Box::pin(std::future::ready(RefreshLock::Granted(
            Fence::UNCOORDINATED,
        )))
    }

    /// Give the lock back (only if it is still ours; a lock that expired is not touched).
    fn unlock_refresh<'a>(&'a self, _account: &'a str, _fence: Fence) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    /// `save` by the holder of `fence`: a shared store drops the write (keeping its local
    /// copy) when a newer fence was handed out since, i.e. this holder outlived its lock.
    fn save_fenced<'a>(
        &'a self,
        account: &'a str,
        token: &'a CachedToken,
        _fence: Fence,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.save(account, token)
    }

    /// A shared store that is unreachable or was so moments ago. Another instance may
    /// then have rotated a refresh token without being able to share the new one yet,
    /// so a refusal of ours is no verdict on the account.
    fn recently_unreachable(&self) -> bool {
        false
    }

    /// The shared store is reachable again: write to it what was saved only locally
    /// while it was not (a refresh token rotated during an outage must reach the other
    /// instances, or their next refresh presents the revoked one).
    fn resync(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }

    /// The shared store came back and may have lost its data (a restart without
    /// persistence): queue `accounts` for [`TokenStore::resync`], which writes each local
    /// record unless the store holds a newer one.
    fn mark_unsynced(&self, _accounts: &[&str]) {}
}

/// A fencing token: each grant of an account's refresh lock gets a larger one, so writes
/// by a holder whose lock expired can be told apart from the current holder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence(Option<u64>);

impl Fence {
    /// No coordination took place (local store, or the shared store was unreachable).
    pub const UNCOORDINATED: Fence = Fence(None);

    pub fn new(value: u64) -> Self {
        Fence(Some(value))
    }

    pub fn value(self) -> Option<u64> {
        self.0
    }
}

/// The answer to [`TokenStore::lock_refresh`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshLock {
    /// Refresh, save with [`TokenStore::save_fenced`], then unlock.
    Granted(Fence),
    /// Another instance is refreshing: wait for its token to appear in the store.
    Busy,
}

/// Longest id accepted as a key; the configuration layer allows 64, this leaves headroom
/// while keeping `{id}.json` and its temp-file name under common 255-byte name limits.
const MAX_ACCOUNT_ID_LEN: usize = 128;

/// Defence in depth for ids used as file names or keys: the configuration layer already
/// validates ids, but a store must not be talked into writing outside its directory.
pub fn check_account_id(account: &str) -> Result<(), StoreError> {
    let escapes = account.is_empty()
        || account.len() > MAX_ACCOUNT_ID_LEN
        || account.starts_with('.')
        || account.contains("..")
        || account.contains(['/', '\\', '\0']);
    if escapes {
        return Err(StoreError::InvalidAccountId {
            shown: account.chars().take(64).collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_configured_ids() {
        for id in ["default", "account_1", "primary", "a", "A-b.c_9"] {
            assert!(check_account_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_ids_that_escape_the_directory() {
        let long = "a".repeat(MAX_ACCOUNT_ID_LEN + 1);
        for id in [
            "",
            ".",
            "..",
            "../etc",
            "a/../../b",
            "a/b",
            "/abs",
            "a\\b",
            "x..y",
            ".hidden",
            "nul\0byte",
            long.as_str(),
        ] {
            assert!(
                matches!(
                    check_account_id(id),
                    Err(StoreError::InvalidAccountId { .. })
                ),
                "{id:?} accepted"
            );
        }
    }

    #[test]
    fn debug_redacts_both_tokens() {
        let token = CachedToken {
            access_token: Some("aoa-access-secret".into()),
            refresh_token: "refresh-secret".into(),
            expires_at: None,
        };
        let shown = format!("{token:?}");
        assert!(!shown.contains("aoa-access-secret"), "{shown}");
        assert!(!shown.contains("refresh-secret"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }
}
