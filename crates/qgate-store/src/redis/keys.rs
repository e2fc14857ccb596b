//! The Redis key layout, in one place. Every key starts with the configured prefix
//! (default `qgate:`), so several gateways (or other applications) can share one server.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `tok:{id}` | hash | `data` (sealed token record), `exp` (access-token expiry, ms), `fence`, `at` |
//! | `lock:refresh:{id}` | string, PX | the refresh lock; value = the holder's fencing token |
//! | `fence:{id}` | counter | fencing tokens handed out for `id` (`INCR`) |
//! | `state:{id}` | string | the account's shared pool state (JSON, with origin and stamp) |
//! | `events` | channel | state changes and admin changes (JSON messages) |
//! | `inflight:{id}` | zset | lease ids of requests in flight, scored by lease expiry (ms) |
//! | `rpm:{id}` | zset | request ids of the last minute, scored by start time (ms) |
//! | `sticky:{hash}` | string, PX | account id a session is bound to |
//! | `count:{id}` | hash | `requests`, `successes`, `errors` across all instances |
//! | `admin:accounts` | string | admin-made account changes (sealed JSON) |
//! | `admin:version` | counter | bumped with every admin change |

use sha2::{Digest, Sha256};

/// Default prefix (`REDIS_PREFIX`).
pub const DEFAULT_PREFIX: &str = "qgate:";

/// Builds every key from one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut key = String::with_capacity(
            self.prefix.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>(),
        );
        key.push_str(&self.prefix);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push(':');
            }
            key.push_str(part);
        }
        key
    }

    pub fn token(&self, account: &str) -> String {
        self.key(&["tok", account])
    }

    pub fn refresh_lock(&self, account: &str) -> String {
        self.key(&["lock", "refresh", account])
    }

    pub fn fence(&self, account: &str) -> String {
        self.key(&["fence", account])
    }

    pub fn state(&self, account: &str) -> String {
        self.key(&["state", account])
    }

    pub fn events(&self) -> String {
        self.key(&["events"])
    }

    pub fn in_flight(&self, account: &str) -> String {
        self.key(&["inflight", account])
    }

    pub fn rpm(&self, account: &str) -> String {
        self.key(&["rpm", account])
    }

    /// `session_hash` comes from [`session_hash`]: the client's session string itself is
    /// never stored.
    pub fn sticky(&self, session_hash: &str) -> String {
        self.key(&["sticky", session_hash])
    }

    pub fn counts(&self, account: &str) -> String {
        self.key(&["count", account])
    }

    pub fn admin_accounts(&self) -> String {
        self.key(&["admin", "accounts"])
    }

    pub fn admin_version(&self) -> String {
        self.key(&["admin", "version"])
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new(DEFAULT_PREFIX)
    }
}

/// A stable, instance-independent name for a sticky session: the first 16 bytes of
/// SHA-256 over the session string, in hex. Every instance computes the same one, and the
/// key does not reveal the client's session id (often a user id).
pub fn session_hash(session: &str) -> String {
    let digest = Sha256::digest(session.as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_the_documented_shape() {
        let keys = Keys::default();
        assert_eq!(keys.token("sim-1"), "qgate:tok:sim-1");
        assert_eq!(keys.refresh_lock("sim-1"), "qgate:lock:refresh:sim-1");
        assert_eq!(keys.fence("sim-1"), "qgate:fence:sim-1");
        assert_eq!(keys.state("sim-1"), "qgate:state:sim-1");
        assert_eq!(keys.events(), "qgate:events");
        assert_eq!(keys.in_flight("sim-1"), "qgate:inflight:sim-1");
        assert_eq!(keys.rpm("sim-1"), "qgate:rpm:sim-1");
        assert_eq!(keys.sticky("ab12"), "qgate:sticky:ab12");
        assert_eq!(keys.counts("sim-1"), "qgate:count:sim-1");
        assert_eq!(keys.admin_accounts(), "qgate:admin:accounts");
        assert_eq!(keys.admin_version(), "qgate:admin:version");
    }

    #[test]
    fn prefix_separates_deployments() {
        let keys = Keys::new("blue:");
        assert_eq!(keys.prefix(), "blue:");
        assert_eq!(keys.token("a"), "blue:tok:a");
        assert_ne!(keys.token("a"), Keys::default().token("a"));
    }

    #[test]
    fn session_hash_is_stable_and_hides_the_session() {
        let hash = session_hash("user-42@example.com");
        assert_eq!(hash.len(), 32);
        assert_eq!(hash, session_hash("user-42@example.com"));
        assert_ne!(hash, session_hash("user-43@example.com"));
        assert!(!hash.contains("user"));
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
