//! One event to one URL: `POST` JSON, bounded attempts with exponential backoff, a timeout
//! per attempt. Any 2xx is delivered; anything else (status, connect error, timeout) is
//! retried until the attempts run out. The URL is logged without its query string, which
//! is where receivers usually put their secret.

use super::Event;
use crate::state::AppState;
use std::sync::Arc;
use std::time::Duration;

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        self.backoff_base
            .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .min(self.backoff_max)
    }
}

/// `https://host/path?token=…` → `https://host/path`.
fn loggable(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

pub(super) async fn deliver(state: AppState, url: String, event: Arc<Event>, policy: RetryPolicy) {
    let http = state.upstream.http().clone();
    let attempts = policy.attempts.max(1);
    for attempt in 0..attempts {
        let sent = http
            .post(&url)
            .timeout(policy.timeout)
            .json(&*event)
            .send()
            .await;
        let problem = match sent {
            Ok(resp) if resp.status().is_success() => {
                state.metrics.record_webhook(event.event, true);
                tracing::info!(event = event.event, account = ?event.account,
                    url = loggable(&url), attempt = attempt + 1, "webhook delivered");
                return;
            }
            Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
            Err(e) if e.is_timeout() => "timeout".to_owned(),
            Err(e) if e.is_connect() => "connection failed".to_owned(),
            Err(_) => "request failed".to_owned(),
        };
        tracing::warn!(
            event = event.event,
            url = loggable(&url),
            attempt = attempt + 1,
            attempts,
            problem,
            "webhook delivery failed"
        );
        if attempt + 1 < attempts {
            tokio::time::sleep(policy.backoff(attempt)).await;
        }
    }
    state.metrics.record_webhook(event.event, false);
}
