//! Client API keys beyond authentication: the keys file (`API_KEYS_FILE`), per-key
//! requests-per-minute and concurrency limits, and per-key usage counters.
//!
//! Concurrency is released by RAII: [`KeyBook::admit`] hands out a [`ClientGuard`], and the
//! client-auth middleware moves it into the response body ([`GuardedBody`]). The body lives
//! exactly as long as the response is being sent — to its last SSE byte for a stream, or
//! until hyper drops it when the client disconnects — so the slot is given back at the
//! moment the request really ends, with no hook in the request path.
//!
//! Runtime state is kept per key *name* and survives reloads, so reloading a keys file does
//! not reset anyone's rate window or usage.

mod body;
#[cfg(test)]
mod tests;

pub use body::GuardedBody;

use crate::config::ClientKey;
use crate::middleware::KeyEntry;
use parking_lot::Mutex;
use secrecy::SecretString;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const MINUTE_MS: u64 = 60_000;

/// Reads a keys file: one `name:key[:rpm[:concurrency]]` per line; blank lines and lines
/// starting with `#` are skipped; an empty limit field means "no limit". Every malformed
/// line is reported as (line number, problem); no key material appears in a problem.
pub fn read_keys_file(path: &Path) -> Result<Vec<ClientKey>, Vec<(usize, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![(0, format!("cannot read keys file: {e}"))])?;
    parse_keys(&text)
}

/// [`read_keys_file`] on text.
pub fn parse_keys(text: &str) -> Result<Vec<ClientKey>, Vec<(usize, String)>> {
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').map(str::trim).collect();
        if fields.len() < 2 || fields.len() > 4 {
            problems.push((line_no, "expected name:key[:rpm[:concurrency]]".to_owned()));
            continue;
        }
        let (name, key) = (fields[0], fields[1]);
        if name.is_empty() || key.is_empty() {
            problems.push((line_no, "name and key must not be empty".to_owned()));
            continue;
        }
        let mut limit = |idx: usize, what: &str| -> Option<u32> {
            let v = fields.get(idx).copied().filter(|v| !v.is_empty())?;
            match v.parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    problems.push((line_no, format!("{what} `{v}` is not a positive number")));
                    None
                }
            }
        };
        let rpm_limit = limit(2, "rpm");
        let max_concurrency = limit(3, "concurrency");
        keys.push(ClientKey {
            name: name.to_owned(),
            key: SecretString::from(key.to_owned()),
            rpm_limit,
            max_concurrency,
        });
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

/// Why a key may not start another request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its requests-per-minute window is full until `retry_after` has passed.
    RateLimited { retry_after: Duration },
    /// It has `max_concurrency` requests in flight.
    TooManyConcurrent,
}

impl Refusal {
    pub fn retry_after(self) -> Duration {
        match self {
            Refusal::RateLimited { retry_after } => retry_after,
            Refusal::TooManyConcurrent => Duration::from_secs(1),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Refusal::RateLimited { .. } => "rpm",
            Refusal::TooManyConcurrent => "concurrency",
        }
    }
}

/// One key's live counters.
#[derive(Debug, Default)]
struct KeyRuntime {
    in_flight: AtomicU32,
    /// Start times (ms) of the requests admitted in the last minute, oldest first; only
    /// kept for keys with an RPM limit, and never longer than that limit.
    window: Mutex<VecDeque<u64>>,
    requests: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    refused_rpm: AtomicU64,
    refused_concurrency: AtomicU64,
}

/// Per-key limits and usage, by key name.
#[derive(Debug, Default)]
pub struct KeyBook {
    keys: Mutex<HashMap<Arc<str>, Arc<KeyRuntime>>>,
}

/// Holds one of a key's concurrency slots; dropping it gives the slot back.
#[derive(Debug)]
pub struct ClientGuard {
    runtime: Arc<KeyRuntime>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.runtime.in_flight.fetch_sub(1, Relaxed);
    }
}

/// What `GET /admin/keys` shows about one key: its name, limits and counters, never
/// the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyUsage {
    pub name: String,
    pub rpm_limit: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub in_flight: u32,
    /// Requests admitted in the last minute (counted only for keys with an RPM limit).
    pub requests_last_minute: Option<u32>,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub refused_rpm: u64,
    pub refused_concurrency: u64,
}

impl KeyBook {
    pub fn new() -> Self {
        Self::default()
    }

    fn runtime(&self, name: &str) -> Arc<KeyRuntime> {
        let mut keys = self.keys.lock();
        if let Some(rt) = keys.get(name) {
            return rt.clone();
        }
        let rt = Arc::new(KeyRuntime::default());
        keys.insert(Arc::from(name), rt.clone());
        rt
    }

    /// Admits one request of `key` at `now_ms`, or says why not. Concurrency is reserved
    /// first and handed back if the rate window then refuses, so a refused request never
    /// holds a slot.
    pub fn admit(&self, key: &KeyEntry, now_ms: u64) -> Result<ClientGuard, Refusal> {
        let rt = self.runtime(&key.name);
        let reserved = match key.max_concurrency {
            None => {
                rt.in_flight.fetch_add(1, Relaxed);
                true
            }
            Some(cap) => rt
                .in_flight
                .fetch_update(Relaxed, Relaxed, |n| (n < cap).then_some(n + 1))
                .is_ok(),
        };
        if !reserved {
            rt.refused_concurrency.fetch_add(1, Relaxed);
            return Err(Refusal::TooManyConcurrent);
        }
        let guard = ClientGuard {
            runtime: rt.clone(),
        };
        if let Some(limit) = key.rpm_limit {
            let mut window = rt.window.lock();
            while window.front().is_some_and(|&t| t + MINUTE_MS <= now_ms) {
                window.pop_front();
            }
            if window.len() >= limit as usize {
                let oldest = window.front().copied().unwrap_or(now_ms);
                let wait = (oldest + MINUTE_MS).saturating_sub(now_ms);
                drop(window);
                rt.refused_rpm.fetch_add(1, Relaxed);
                return Err(Refusal::RateLimited {
                    retry_after: Duration::from_millis(wait.max(1)),
                });
            }
            window.push_back(now_ms);
        }
        rt.requests.fetch_add(1, Relaxed);
        Ok(guard)
    }

    /// Adds a finished request's tokens to the key's usage.
    pub fn add_tokens(&self, name: &str, input: u64, output: u64) {
        let rt = self.runtime(name);
        rt.input_tokens.fetch_add(input, Relaxed);
        rt.output_tokens.fetch_add(output, Relaxed);
    }

    /// Usage of every configured key (in `keys` order), limits as configured now.
    pub fn usage(&self, keys: &[KeyEntry], now_ms: u64) -> Vec<KeyUsage> {
        keys.iter()
            .map(|k| {
                let rt = self.runtime(&k.name);
                let requests_last_minute = k.rpm_limit.map(|_| {
                    let window = rt.window.lock();
                    window.iter().filter(|&&t| t + MINUTE_MS > now_ms).count() as u32
                });
                KeyUsage {
                    name: k.name.to_string(),
                    rpm_limit: k.rpm_limit,
                    max_concurrency: k.max_concurrency,
                    in_flight: rt.in_flight.load(Relaxed),
                    requests_last_minute,
                    requests: rt.requests.load(Relaxed),
                    input_tokens: rt.input_tokens.load(Relaxed),
                    output_tokens: rt.output_tokens.load(Relaxed),
                    refused_rpm: rt.refused_rpm.load(Relaxed),
                    refused_concurrency: rt.refused_concurrency.load(Relaxed),
                }
            })
            .collect()
    }
}
