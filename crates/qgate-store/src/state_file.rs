//! [`StateFile`]: one JSON document (pool states, admin changes) loaded at start and
//! replaced atomically on every save.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::zeroize::Zeroizing;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::atomic::{ensure_private_dir, write_atomic};
use crate::{StoreError, run_blocking};

/// A typed JSON document on disk. The document may hold admin-supplied credentials, so it
/// gets the same treatment as token caches: 0600 file in a 0700 directory, atomic replace.
pub struct StateFile<T> {
    path: Arc<Path>,
    /// Saves run one at a time so they reach the disk in call order.
    write_order: tokio::sync::Mutex<()>,
    _document: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for StateFile<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<T> StateFile<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// File name used by [`StateFile::in_dir`]. It starts with `_`, which account ids
    /// cannot, so it never collides with a token cache in the same directory.
    pub const DEFAULT_FILE_NAME: &'static str = "_qgate-state.json";

    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateFile {
            path: path.into().into(),
            write_order: tokio::sync::Mutex::new(()),
            _document: PhantomData,
        }
    }

    /// `{dir}/_qgate-state.json`, next to the token caches.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        Self::new(dir.as_ref().join(Self::DEFAULT_FILE_NAME))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved document, or `None` when none was saved yet.
    pub async fn load(&self) -> Result<Option<T>, StoreError> {
        let path = Arc::clone(&self.path);
        run_blocking(move || match std::fs::read(&*path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|err| StoreError::malformed(&*path, &err))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::io("read", &*path, err)),
        })
        .await
    }

    /// Replace the document. A crash leaves the previous or this complete document.
    pub async fn save(&self, document: &T) -> Result<(), StoreError> {
        let _in_order = self.write_order.lock().await;
        let mut bytes = Zeroizing::new(Vec::new());
        serde_json::to_writer_pretty(&mut *bytes, document).map_err(|_| StoreError::Encode {
            path: self.path.to_path_buf(),
        })?;
        let path = Arc::clone(&self.path);
        run_blocking(move || {
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                ensure_private_dir(dir).map_err(|err| StoreError::io("create", dir, err))?;
            }
            write_atomic(&path, &bytes).map_err(|err| StoreError::io("write", &*path, err))
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct PoolState {
        disabled: Vec<String>,
        weights: BTreeMap<String, u32>,
    }

    #[tokio::test]
    async fn missing_document_is_none_then_round_trips() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("cache");
        let state: StateFile<PoolState> = StateFile::in_dir(&dir);
        assert!(state.load().await.unwrap().is_none());

        let first = PoolState {
            disabled: vec!["backup".into()],
            weights: BTreeMap::from([("primary".into(), 10)]),
        };
        state.save(&first).await.unwrap();
        assert_eq!(state.load().await.unwrap(), Some(first));

        let second = PoolState {
            disabled: vec![],
            weights: BTreeMap::new(),
        };
        state.save(&second).await.unwrap();
        assert_eq!(state.load().await.unwrap(), Some(second));

        let file = dir.join("_qgate-state.json");
        assert_eq!(state.path(), file);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }

    #[tokio::test]
    async fn document_of_another_shape_is_malformed() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("state.json");
        std::fs::write(&path, br#"{"disabled": 3}"#).unwrap();
        let state: StateFile<PoolState> = StateFile::new(&path);
        assert!(matches!(
            state.load().await,
            Err(StoreError::Malformed { line: 1, .. })
        ));
    }
}
