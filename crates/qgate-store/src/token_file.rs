//! The local [`TokenStore`]: one seed-format JSON file per account in a private directory.
//!
//! Layout (compatible with the original gateway): `{dir}/{account}.json`, mode 0600, in a
//! 0700 `dir` (default `~/.amazonq_token_cache`). The original single-account mode used
//! `{dir}.json` (`~/.amazonq_token_cache.json`) for the account `default`; that file is
//! still read, and when both exist the one that expires later wins.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::tz::TimeZone;

use crate::atomic::{ensure_private_dir, write_atomic};
use crate::{
    BoxFuture, CachedToken, StoreError, TokenStore, check_account_id, run_blocking, seed_format,
};

/// Account whose cache may also live in the legacy single-account file.
const LEGACY_ACCOUNT: &str = "default";

/// Token caches as files. Cheap to share (`Arc<FileTokenStore>` as `Arc<dyn TokenStore>`).
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    dir: Arc<Path>,
    legacy_file: Option<Arc<Path>>,
}

impl FileTokenStore {
    /// A store in `dir`, also reading the legacy file `{dir}.json` for `default` (for the
    /// default directory that is the original's `~/.amazonq_token_cache.json`).
    ///
    /// Creates `dir` (0700) or tightens it now, so an unusable cache directory fails the
    /// start instead of the first token save an hour later.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir: PathBuf = dir.into();
        ensure_private_dir(&dir).map_err(|err| StoreError::io("create", &dir, err))?;
        let mut legacy = dir.clone().into_os_string();
        legacy.push(".json");
        Ok(FileTokenStore {
            dir: dir.into(),
            legacy_file: Some(PathBuf::from(legacy).into()),
        })
    }

    /// Read the legacy single-account file from `path` instead, or not at all (`None`).
    pub fn with_legacy_file(mut self, path: Option<PathBuf>) -> Self {
        self.legacy_file = path.map(Into::into);
        self
    }

    /// `~/.amazonq_token_cache`; relative to the working directory when the home directory
    /// is unknown (a service account without `HOME`), rather than failing the start.
    pub fn default_dir() -> PathBuf {
        const NAME: &str = ".amazonq_token_cache";
        std::env::home_dir().map_or_else(|| PathBuf::from(NAME), |home| home.join(NAME))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `account`'s cache.
    pub fn path_for(&self, account: &str) -> Result<PathBuf, StoreError> {
        check_account_id(account)?;
        Ok(self.dir.join(format!("{account}.json")))
    }

    fn legacy_for(&self, account: &str) -> Option<&Path> {
        (account == LEGACY_ACCOUNT)
            .then_some(self.legacy_file.as_deref())
            .flatten()
    }

    fn load_blocking(&self, account: &str) -> Result<Option<CachedToken>, StoreError> {
        let tz = TimeZone::system();
        let primary = read_record(&self.path_for(account)?, &tz);
        let Some(legacy_path) = self.legacy_for(account) else {
            return primary;
        };
        match (primary, read_record(legacy_path, &tz)) {
            (Ok(Some(ours)), Ok(Some(legacy))) => Ok(Some(later_expiry(ours, legacy))),
            (Ok(Some(ours)), _) => Ok(Some(ours)),
            (Ok(None), legacy) => legacy,
            (Err(err), Ok(Some(legacy))) => {
                tracing::warn!(error = %err, "unreadable token cache; using the legacy single-account file");
                Ok(Some(legacy))
            }
            (Err(err), _) => Err(err),
        }
    }

    fn save_blocking(&self, account: &str, token: &CachedToken) -> Result<(), StoreError> {
        let path = self.path_for(account)?;
        let bytes = seed_format::encode(&path, token, &TimeZone::system())?;
        ensure_private_dir(&self.dir).map_err(|err| StoreError::io("create", &*self.dir, err))?;
        write_atomic(&path, &bytes).map_err(|err| StoreError::io("write", &path, err))
    }

    fn remove_blocking(&self, account: &str) -> Result<(), StoreError> {
        remove_if_present(&self.path_for(account)?)?;
        // The legacy file holds the same account's tokens; leaving it would resurrect a
        // removed account's refresh token on the next start.
        match self.legacy_for(account) {
            Some(legacy) => remove_if_present(legacy),
            None => Ok(()),
        }
    }
}

impl TokenStore for FileTokenStore {
    fn load<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<CachedToken>, StoreError>> {
        let store = self.clone();
        let account = account.to_owned();
        Box::pin(run_blocking(move || store.load_blocking(&account)))
    }

    fn save<'a>(
        &'a self,
        account: &'a str,
        token: &'a CachedToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let store = self.clone();
        let account = account.to_owned();
        let token = token.clone();
        Box::pin(run_blocking(move || store.save_blocking(&account, &token)))
    }

    fn remove<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let store = self.clone();
        let account = account.to_owned();
        Box::pin(run_blocking(move || store.remove_blocking(&account)))
    }
}

fn read_record(path: &Path, tz: &TimeZone) -> Result<Option<CachedToken>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = secrecy::zeroize::Zeroizing::new(bytes);
            seed_format::decode(path, &bytes, tz)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(StoreError::io("read", path, err)),
    }
}

fn later_expiry(ours: CachedToken, legacy: CachedToken) -> CachedToken {
    if legacy.expires_at > ours.expires_at {
        legacy
    } else {
        ours
    }
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(StoreError::io("remove", path, err)),
    }
}

#[cfg(test)]
mod tests;
