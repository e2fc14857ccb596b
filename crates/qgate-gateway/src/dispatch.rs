//! The attempt loop: pick an account, get its token, call the upstream, classify what
//! happened, and either fail over or **commit**.
//!
//! The commit point is explicit: an attempt commits when the first *content* event
//! (text, tool use, reasoning) has arrived from the upstream. Before it, every failure
//! may be retried on another account (up to `max_attempts`, distinct accounts, jittered
//! backoff); an expired or rejected token gets one forced refresh and one retry on the
//! same account. After it, nothing is retried: errors become one Anthropic `error` event.
//! The pool reacts only to the classified outcome, reported here and only here.

mod outcome;
mod slot;

pub use outcome::pool_outcome;
pub use slot::Slot;

use crate::accounts::Account;
use crate::error::GatewayError;
use crate::state::{AppState, Runtime};
use crate::upstream::{AttemptError, EventReader};
use bytes::Bytes;
use qgate_amazonq::classify::{RetryAdvice, UpstreamFailure};
use qgate_amazonq::{Event, StreamError};
use qgate_auth::{AccessToken, RefreshError};
use qgate_pool::{AccountId, NoAccount, Outcome, SelectRequest};
use qgate_translate::model_map::ResolvedModel;
use qgate_translate::request::Translated;
use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// A request, translated and ready to be sent to any account.
#[derive(Debug)]
pub struct Prepared {
    pub request_id: String,
    pub client_model: String,
    pub model: ResolvedModel,
    pub session: Option<String>,
    pub translated: Translated,
    pub stream: bool,
    /// `input_tokens` as reported to the client (calibrated estimate, or 0 for
    /// `ZERO_INPUT_TOKEN_MODELS`).
    pub input_tokens: u64,
    pub received: std::time::Instant,
    pub client_key: Option<Arc<str>>,
    /// Bytes of the client's request body: the upstream body carries the same content,
    /// so its buffer is sized from this once instead of growing by doubling.
    pub client_body_len: usize,
}

impl Prepared {
    /// Frees the upstream body once no further attempt can need it (after commit): a
    /// long-lived stream should not hold an 80 KB Claude Code request for its lifetime.
    pub fn release_body(&mut self) {
        let state = &mut self.translated.body.conversation_state;
        state.history = Vec::new();
        state.current_message.user_input_message = Default::default();
    }
}

/// Room for the upstream body of a request whose client body had `client_len` bytes: the
/// same text plus the upstream wrapping (conversation state, per-tool specification
/// objects); on Claude Code's first-turn request the upstream body is 0.99 of the client's.
fn upstream_body_capacity(client_len: usize) -> usize {
    client_len + client_len / 8 + 1024
}

/// An upstream stream whose first content event has arrived.
#[derive(Debug)]
pub struct Committed {
    pub slot: Slot,
    pub account: Arc<Account>,
    pub reader: EventReader,
    /// Events received up to and including the first content event, in order.
    pub pending: Vec<Event>,
    /// The stream ended with the output limit before any content.
    pub output_limit: bool,
    /// Time from sending the attempt to its first event (for latency routing).
    pub ttfe: Duration,
    pub attempt_started: Instant,
}

/// The per-request attempt state, reused when a non-streaming request fails after commit.
#[derive(Debug)]
pub struct Dispatch {
    state: AppState,
    rt: Arc<Runtime>,
    /// The client's model name, for error messages.
    model: String,
    tried: Vec<AccountId>,
    attempts: u32,
    failures: Vec<UpstreamFailure>,
    /// Time blocked on upstream sockets before commit (all attempts).
    pub upstream_wait: Duration,
}

fn is_content(ev: &Event) -> bool {
    match ev {
        Event::AssistantResponse { content } => !content.is_empty(),
        Event::ToolUse { .. } | Event::Reasoning { .. } => true,
        Event::InitialResponse { .. }
        | Event::ContextUsage { .. }
        | Event::Metering { .. }
        | Event::TokenUsage { .. }
        | Event::MessageMetadata { .. }
        | Event::InvalidState { .. } => false,
    }
}

impl Dispatch {
    pub fn new(state: AppState, rt: Arc<Runtime>, model: String) -> Self {
        Dispatch {
            state,
            rt,
            model,
            tried: Vec::new(),
            attempts: 0,
            failures: Vec::new(),
            upstream_wait: Duration::ZERO,
        }
    }

    /// The error to give the client when no attempt is left.
    pub fn give_up(&self) -> GatewayError {
        self.exhausted(None)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Whether another attempt is allowed.
    pub fn can_retry(&self) -> bool {
        self.attempts < self.rt.dispatch.max_attempts
    }

    /// Runs attempts until one commits or none is left.
    pub async fn connect(&mut self, p: &mut Prepared) -> Result<Committed, GatewayError> {
        loop {
            if !self.can_retry() {
                return Err(self.exhausted(None));
            }
            // Boxed: waiting for a slot (queue, Redis) is the largest state of this future
            // by far (2.4 KB of 2.9), and a held stream would carry that room while it waits
            // on the upstream (docs/benchmarks.md, seventh round).
            let slot = Box::pin(self.acquire(p)).await?;
            self.attempts += 1;
            let id = slot.account().clone();
            self.tried.push(id.clone());
            let Some(account) = self.rt.accounts.get(&id).cloned() else {
                // Removed between snapshot and selection: not the account's fault.
                drop(slot);
                continue;
            };
            match self.attempt_account(p, slot, account).await {
                Ok(c) => return Ok(c),
                Err(AttemptEnd::Fatal(e)) => return Err(e),
                Err(AttemptEnd::Next) => {
                    if self.can_retry() {
                        self.backoff().await;
                    }
                }
            }
        }
    }

    /// Records a failure that happened after commit (non-streaming retries use it).
    pub fn record_post_commit_failure(&mut self, failure: UpstreamFailure) {
        self.failures.push(failure);
    }

    async fn attempt_account(
        &mut self,
        p: &mut Prepared,
        slot: Slot,
        account: Arc<Account>,
    ) -> Result<Committed, AttemptEnd> {
        let pool = self.rt.pool.clone();
        let metrics = self.state.metrics.clone();
        let mut token = match account.tokens.access_token().await {
            Ok(t) => t,
            Err(e) => {
                self.refresh_failed(&slot, &e);
                return Err(AttemptEnd::Next);
            }
        };
        p.translated
            .set_account(account.dialect().origin(), account.profile_arn());
        let mut body = Vec::with_capacity(upstream_body_capacity(p.client_body_len));
        let body = match serde_json::to_writer(&mut body, &p.translated.body) {
            Ok(()) => Bytes::from(body),
            Err(e) => {
                return Err(AttemptEnd::Fatal(GatewayError::Internal(format!(
                    "serializing upstream request: {e}"
                ))));
            }
        };
        let mut refreshed = false;
        loop {
            let started = Instant::now();
            let result = self.try_once(&account, &token, body.clone(), started).await;
            self.upstream_wait += started.elapsed();
            match result {
                Ok((reader, pending, output_limit)) => {
                    return Ok(Committed {
                        slot,
                        account,
                        reader,
                        pending,
                        output_limit,
                        ttfe: started.elapsed(),
                        attempt_started: started,
                    });
                }
                Err(err) => {
                    let failure = err.failure();
                    metrics.record_attempt_error(account.id(), err.error_type(), failure.label());
                    tracing::debug!(request_id = %p.request_id, account = %account.id(),
                        error = %err, class = failure.label(), "upstream attempt failed");
                    match failure.retry_advice() {
                        RetryAdvice::RefreshAndRetrySame if !refreshed => {
                            refreshed = true;
                            match account.tokens.force_refresh(&token).await {
                                Ok(t) => {
                                    token = t;
                                    continue;
                                }
                                Err(e) => {
                                    self.refresh_failed(&slot, &e);
                                    return Err(AttemptEnd::Next);
                                }
                            }
                        }
                        RetryAdvice::Never => {
                            let transitions =
                                pool.report(slot.lease(), Outcome::ClientError, now_ms());
                            metrics.record_transitions(&transitions);
                            return Err(AttemptEnd::Fatal(self.client_error(p, failure)));
                        }
                        RetryAdvice::RefreshAndRetrySame | RetryAdvice::OtherAccount => {
                            let outcome = pool_outcome(&failure, &p.model.upstream_id);
                            let transitions = pool.report(slot.lease(), outcome, now_ms());
                            metrics.record_transitions(&transitions);
                            self.failures.push(failure);
                            return Err(AttemptEnd::Next);
                        }
                    }
                }
            }
        }
    }

    /// One HTTP call, up to the first content event.
    async fn try_once(
        &self,
        account: &Account,
        token: &AccessToken,
        body: Bytes,
        started: Instant,
    ) -> Result<(EventReader, Vec<Event>, bool), AttemptError> {
        let deadline = started + self.rt.upstream.first_event_timeout;
        let mut reader = self
            .state
            .upstream
            .send(
                &account.api_base,
                account.dialect(),
                token.expose(),
                body,
                deadline,
                self.rt.upstream.idle_timeout,
            )
            .await?;
        let mut pending = Vec::new();
        loop {
            match reader.next(Some(deadline)).await {
                Ok(Some(Event::InvalidState { reason, message })) => {
                    return Err(AttemptError::InBand(StreamError::Exception {
                        exception_type: "InvalidStateEvent".into(),
                        message,
                        reason: Some(reason),
                    }));
                }
                Ok(Some(ev)) => {
                    let content = is_content(&ev);
                    pending.push(ev);
                    if content {
                        return Ok((reader, pending, false));
                    }
                }
                Ok(None) => return Err(AttemptError::Empty),
                Err(AttemptError::InBand(e)) if e.is_output_limit() => {
                    return Ok((reader, pending, true));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn refresh_failed(&mut self, slot: &Slot, e: &RefreshError) {
        let outcome = if e.is_permanent() {
            Outcome::RefreshDenied
        } else {
            Outcome::RefreshFailed
        };
        tracing::warn!(account = %slot.account(), error = %e, "token refresh failed");
        self.state
            .metrics
            .record_attempt_error(slot.account(), "token_refresh", "refresh");
        let transitions = self.rt.pool.report(slot.lease(), outcome, now_ms());
        self.state.metrics.record_transitions(&transitions);
        self.failures
            .push(UpstreamFailure::Transient { status: None });
    }

    fn client_error(&self, p: &Prepared, failure: UpstreamFailure) -> GatewayError {
        match failure {
            UpstreamFailure::Client(fault) => {
                let explanation =
                    qgate_amazonq::validate::validate(&p.translated.body, &Default::default())
                        .err()
                        .map(|v| v.detail);
                GatewayError::UpstreamClient {
                    fault,
                    estimated_tokens: p.translated.input_tokens,
                    context_window: p.model.context_window,
                    explanation,
                }
            }
            other => GatewayError::Internal(format!(
                "unexpected non-retryable failure {}",
                other.label()
            )),
        }
    }

    /// Selects an account, waiting in the bounded queue while every candidate is busy.
    async fn acquire(&mut self, p: &Prepared) -> Result<Slot, GatewayError> {
        let queue_deadline = Instant::now() + self.rt.dispatch.queue_timeout;
        let mut queued = false;
        let sticky = crate::cluster::sticky_hint(&self.state, &self.rt, p.session.as_deref()).await;
        // Accounts other instances have filled up, retried after each wait.
        let mut refused = Vec::new();
        let result = loop {
            let notified = self.state.slot_released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let req = SelectRequest {
                model: &p.model.upstream_id,
                session: p.session.as_deref(),
                exclude: &self.tried,
            };
            let selected = crate::cluster::select_slot(
                &self.state,
                &self.rt,
                &req,
                sticky.as_ref(),
                &mut refused,
                now_ms(),
            )
            .await;
            match selected {
                Ok(slot) => break Ok(slot),
                Err(NoAccount::AllBusy) => {
                    refused.clear();
                    if !queued {
                        let n = self.state.queued.fetch_add(1, Ordering::AcqRel);
                        if n >= self.rt.dispatch.queue_max {
                            self.state.queued.fetch_sub(1, Ordering::AcqRel);
                            break Err(GatewayError::Unavailable {
                                retry_after: Some(Duration::from_secs(1)),
                                last_failure: None,
                                reason: "the wait queue for a free account is full",
                            });
                        }
                        queued = true;
                    }
                    let tick = Instant::now() + Duration::from_millis(250);
                    if Instant::now() >= queue_deadline {
                        break Err(GatewayError::Unavailable {
                            retry_after: Some(Duration::from_secs(1)),
                            last_failure: None,
                            reason: "every account is at its concurrency or rate limit",
                        });
                    }
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(tick.min(queue_deadline)) => {}
                    }
                }
                Err(other) => break Err(self.no_account(other)),
            }
        };
        if queued {
            self.state.queued.fetch_sub(1, Ordering::AcqRel);
            self.state
                .metrics
                .observe_queue_wait(queue_deadline - self.rt.dispatch.queue_timeout);
        }
        result
    }

    fn cap(&self, ms: u64) -> Duration {
        Duration::from_millis(ms.max(1000)).min(self.rt.dispatch.retry_after_cap)
    }

    fn no_account(&self, no: NoAccount) -> GatewayError {
        match no {
            NoAccount::AllThrottled { retry_after_ms } => GatewayError::AllThrottled {
                retry_after: self.cap(retry_after_ms),
            },
            NoAccount::ModelNotSupported => self.exhausted(Some(GatewayError::ModelNotAvailable {
                model: self.model.clone(),
            })),
            NoAccount::Unavailable { retry_after_ms } => {
                self.exhausted(Some(GatewayError::Unavailable {
                    retry_after: Some(self.cap(retry_after_ms.unwrap_or(1000))),
                    last_failure: self.failures.last().cloned(),
                    reason: "no upstream account is available",
                }))
            }
            NoAccount::AllExcluded => self.exhausted(None),
            NoAccount::Empty => GatewayError::Unavailable {
                retry_after: Some(Duration::from_secs(5)),
                last_failure: None,
                reason: "no upstream accounts are configured",
            },
            NoAccount::AllBusy => GatewayError::Unavailable {
                retry_after: Some(Duration::from_secs(1)),
                last_failure: None,
                reason: "every account is at its concurrency or rate limit",
            },
        }
    }

    /// The error once attempts (or candidates) are used up: 429 when every failure was a
    /// throttle or quota, 404 when every account lacked the model, else 529.
    fn exhausted(&self, fallback: Option<GatewayError>) -> GatewayError {
        let all = |f: fn(&UpstreamFailure) -> bool| {
            !self.failures.is_empty() && self.failures.iter().all(f)
        };
        if all(|f| {
            matches!(
                f,
                UpstreamFailure::Throttled { .. } | UpstreamFailure::QuotaExhausted { .. }
            )
        }) {
            return GatewayError::AllThrottled {
                retry_after: self.cap(
                    self.rt
                        .pool
                        .health(now_ms())
                        .soonest_recovery_ms
                        .unwrap_or(1000),
                ),
            };
        }
        if all(|f| matches!(f, UpstreamFailure::ModelUnavailable)) {
            return GatewayError::ModelNotAvailable {
                model: self.model.clone(),
            };
        }
        match fallback {
            Some(e) if self.failures.is_empty() => e,
            _ => GatewayError::Unavailable {
                retry_after: Some(Duration::from_secs(1)),
                last_failure: self.failures.last().cloned(),
                reason: "every attempt on the upstream accounts failed",
            },
        }
    }

    async fn backoff(&self) {
        let n = self.attempts.saturating_sub(1).min(10);
        let cap = self
            .rt
            .dispatch
            .backoff_base
            .saturating_mul(1 << n)
            .min(self.rt.dispatch.backoff_max);
        let jittered = rand::rng().random_range(0..=cap.as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(jittered)).await;
    }
}

enum AttemptEnd {
    /// Give up on this request with this error.
    Fatal(GatewayError),
    /// Try the next account.
    Next,
}

/// Unix milliseconds: the pool's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
