//! `AccountId`: the validated name of one upstream account.
//!
//! Ids end up as token-cache file names, metric label values and admin URL segments, so
//! they are restricted to `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$` without `..`: no path
//! separators, no control characters, nothing a shell or a file system treats specially.
//! The string is shared (`Arc<str>`) because ids are cloned into leases, transitions and
//! snapshots on every request.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Longest accepted id, in bytes (all accepted characters are ASCII).
pub const MAX_ACCOUNT_ID_LEN: usize = 64;

/// A validated account id. Compares, hashes and borrows as its string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(Arc<str>);

/// Why a string is not an acceptable account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAccountId {
    #[error("account id is empty")]
    Empty,
    #[error("account id is {len} bytes long; at most {MAX_ACCOUNT_ID_LEN} are allowed")]
    TooLong { len: usize },
    #[error("account id must start with an ASCII letter or digit")]
    BadStart,
    #[error(
        "account id may contain only ASCII letters, digits, '.', '_' and '-' (found {found:?} at byte {at})"
    )]
    BadChar { found: char, at: usize },
    #[error("account id must not contain \"..\"")]
    DotDot,
}

impl AccountId {
    /// Validates `raw` and wraps it.
    pub fn new(raw: &str) -> Result<AccountId, InvalidAccountId> {
        validate(raw)?;
        Ok(AccountId(Arc::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's text, shared: a copy that allocates nothing (a metric label, say).
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// Cheap identity check before falling back to string comparison.
    pub(crate) fn same(&self, other: &AccountId) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

fn validate(raw: &str) -> Result<(), InvalidAccountId> {
    let Some(first) = raw.chars().next() else {
        return Err(InvalidAccountId::Empty);
    };
    if raw.len() > MAX_ACCOUNT_ID_LEN {
        return Err(InvalidAccountId::TooLong { len: raw.len() });
    }
    if !first.is_ascii_alphanumeric() {
        return Err(InvalidAccountId::BadStart);
    }
    if let Some((at, found)) = raw
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(InvalidAccountId::BadChar { found, at });
    }
    if raw.contains("..") {
        return Err(InvalidAccountId::DotDot);
    }
    Ok(())
}

impl FromStr for AccountId {
    type Err = InvalidAccountId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountId::new(s)
    }
}

impl TryFrom<String> for AccountId {
    type Error = InvalidAccountId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        validate(&s)?;
        Ok(AccountId(Arc::from(s)))
    }
}

impl TryFrom<&str> for AccountId {
    type Error = InvalidAccountId;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        AccountId::new(s)
    }
}

impl AsRef<str> for AccountId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for AccountId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for AccountId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for AccountId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        AccountId::try_from(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seed_style_ids() {
        for ok in ["primary", "account_1", "a", "A.b-c_9", &"x".repeat(64)] {
            assert_eq!(
                AccountId::new(ok).map(|id| id.to_string()).as_deref(),
                Ok(ok)
            );
        }
    }

    #[test]
    fn rejects_what_could_escape_a_file_name_or_label() {
        assert_eq!(AccountId::new(""), Err(InvalidAccountId::Empty));
        assert_eq!(
            AccountId::new(&"x".repeat(65)),
            Err(InvalidAccountId::TooLong { len: 65 })
        );
        assert_eq!(AccountId::new(".hidden"), Err(InvalidAccountId::BadStart));
        assert_eq!(AccountId::new("-x"), Err(InvalidAccountId::BadStart));
        assert_eq!(
            AccountId::new("a/b"),
            Err(InvalidAccountId::BadChar { found: '/', at: 1 })
        );
        assert_eq!(
            AccountId::new("a\\b"),
            Err(InvalidAccountId::BadChar { found: '\\', at: 1 })
        );
        assert_eq!(
            AccountId::new("a\nb"),
            Err(InvalidAccountId::BadChar { found: '\n', at: 1 })
        );
        assert_eq!(
            AccountId::new("caf\u{e9}"),
            Err(InvalidAccountId::BadChar {
                found: '\u{e9}',
                at: 3
            })
        );
        assert_eq!(AccountId::new("a..b"), Err(InvalidAccountId::DotDot));
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let id: AccountId = serde_json::from_str("\"backup\"").unwrap();
        assert_eq!(id, "backup");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"backup\"");
        assert!(serde_json::from_str::<AccountId>("\"../etc\"").is_err());
    }
}
