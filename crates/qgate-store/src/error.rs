//! The one error type of the store boundary.
//!
//! Invariant: no variant carries file contents or parser messages that could quote them,
//! because those files hold refresh tokens. Paths, operation names and positions only.

use std::io;
use std::path::PathBuf;

/// Why a load or save failed. Never contains token values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The account id would escape the store's directory or name a hidden file.
    #[error(
        "account id {shown:?} is not usable as a store key (empty, too long, path separator, `..` or leading `.`)"
    )]
    InvalidAccountId {
        /// The offending id, truncated; ids are not secrets.
        shown: String,
    },
    /// A filesystem operation failed.
    #[error("could not {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file exists but is not the JSON we expect. Only the position is reported,
    /// since serde's messages may quote the (secret) value they choked on.
    #[error("malformed JSON in {} at line {line}, column {column}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    /// A value could not be encoded as JSON (a bug in the caller's `Serialize`).
    #[error("could not encode the document for {}", path.display())]
    Encode { path: PathBuf },
    /// The blocking I/O task panicked or was cancelled by runtime shutdown.
    #[error("store I/O task did not complete")]
    TaskFailed(#[source] tokio::task::JoinError),
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(path: impl Into<PathBuf>, err: &serde_json::Error) -> Self {
        StoreError::Malformed {
            path: path.into(),
            line: err.line(),
            column: err.column(),
        }
    }
}
