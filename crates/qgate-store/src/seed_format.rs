//! The original (Python) gateway's token cache record, kept byte-compatible because it is
//! part of our public interface: operators migrate with their cache directories.
//!
//! ```json
//! {
//!   "access_token": "aoa...",
//!   "refresh_token": "aor...",
//!   "expires_at": "2025-01-12T10:30:00.123456"
//! }
//! ```
//! `expires_at` is a *naive local* time (Python `datetime.now().isoformat()`), so the
//! system time zone is needed to read and write it. Readers are lenient where leniency
//! saves a refresh token: an unreadable or missing `expires_at` only drops the access token.

use std::path::Path;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::{CachedToken, StoreError};

#[derive(Deserialize)]
struct RecordIn {
    #[serde(default)]
    access_token: Option<SecretString>,
    refresh_token: SecretString,
    #[serde(default)]
    expires_at: Option<String>,
}

#[derive(Serialize)]
struct RecordOut<'a> {
    access_token: Option<&'a str>,
    refresh_token: &'a str,
    expires_at: Option<String>,
}

/// Parse a cache file. `Ok(None)` when the record holds no usable refresh token.
pub(crate) fn decode(
    path: &Path,
    bytes: &[u8],
    tz: &TimeZone,
) -> Result<Option<CachedToken>, StoreError> {
    let record: RecordIn =
        serde_json::from_slice(bytes).map_err(|err| StoreError::malformed(path, &err))?;
    if record.refresh_token.expose_secret().trim().is_empty() {
        tracing::warn!(path = %path.display(), "token cache has an empty refresh_token; ignoring it");
        return Ok(None);
    }
    let expires_at = match record.expires_at.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let parsed = parse_expires_at(text, tz);
            if parsed.is_none() {
                tracing::warn!(path = %path.display(), "unreadable expires_at in token cache; keeping only its refresh token");
            }
            parsed
        }
    };
    // An access token whose expiry is unknown cannot be trusted to be valid.
    let access_token = record
        .access_token
        .filter(|token| !token.expose_secret().is_empty())
        .filter(|_| expires_at.is_some());
    Ok(Some(CachedToken {
        access_token,
        refresh_token: record.refresh_token,
        expires_at,
    }))
}

/// Serialize in the seed's layout (`indent=2`). The buffer is wiped when dropped.
pub(crate) fn encode(
    path: &Path,
    token: &CachedToken,
    tz: &TimeZone,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let record = RecordOut {
        access_token: token.access_token.as_ref().map(ExposeSecret::expose_secret),
        refresh_token: token.refresh_token.expose_secret(),
        expires_at: token.expires_at.map(|at| format_naive_local(at, tz)),
    };
    // Sized up front so the serializer does not reallocate and leave token copies behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        256 + record.refresh_token.len() + record.access_token.map_or(0, str::len),
    ));
    serde_json::to_writer_pretty(&mut *bytes, &record).map_err(|_| StoreError::Encode {
        path: path.to_path_buf(),
    })?;
    Ok(bytes)
}

/// Python's `datetime.isoformat()` of a naive local time: microseconds only when non-zero.
pub(crate) fn format_naive_local(at: Timestamp, tz: &TimeZone) -> String {
    let local = at.to_zoned(tz.clone()).datetime();
    let micros = local.subsec_nanosecond() / 1_000;
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    );
    if micros == 0 {
        base
    } else {
        format!("{base}.{micros:06}")
    }
}

/// Accepts the seed's naive local time (with or without fraction) and, for files written
/// by other tools, an instant with an explicit offset or `Z`.
pub(crate) fn parse_expires_at(text: &str, tz: &TimeZone) -> Option<Timestamp> {
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Some(instant);
    }
    let naive: DateTime = text.parse().ok()?;
    naive
        .to_zoned(tz.clone())
        .ok()
        .map(|zoned| zoned.timestamp())
}

#[cfg(test)]
mod tests;
