//! What happens when a request ends — pool outcome, metrics, calibration, the final log
//! line — in one place for both modes.

use crate::dispatch::{Committed, Dispatch, Prepared, now_ms, pool_outcome};
use crate::error::GatewayError;
use crate::state::{AppState, Runtime};
use crate::upstream::AttemptError;
use qgate_amazonq::classify::UpstreamFailure;
use qgate_pool::Outcome;
use qgate_translate::response::StreamTranslator;
use std::time::Duration;

/// The upstream completed the message.
pub fn succeeded(
    state: &AppState,
    rt: &Runtime,
    p: &Prepared,
    c: &Committed,
    tr: &StreamTranslator,
    d: &Dispatch,
    client_blocked: Duration,
) {
    let transitions = rt.pool.report(
        c.slot.lease(),
        Outcome::Success {
            ttfe_ms: c.ttfe.as_millis() as u64,
        },
        now_ms(),
    );
    state.metrics.record_transitions(&transitions);
    let upstream_time = c.attempt_started.elapsed();
    state.metrics.record_success(c.account.id(), upstream_time);
    if let Some(actual) = tr.upstream_input_tokens() {
        state.observe_input_tokens(&p.model.upstream_id, p.translated.input_tokens, actual);
    }
    let usage = tr.usage();
    let key = p.client_key.as_deref().unwrap_or("none");
    state.metrics.add_tokens(
        &p.client_model,
        key,
        usage.input_tokens,
        usage.output_tokens,
    );
    let total = p.received.elapsed();
    let waited = d.upstream_wait + c.reader.waited() + client_blocked;
    state.metrics.record_client_request(
        200,
        &p.client_model,
        p.stream,
        total,
        Some(total.saturating_sub(waited)),
    );
    tracing::info!(
        request_id = %p.request_id,
        account = %c.account.id(),
        model = %p.client_model,
        stream = p.stream,
        outcome = "success",
        stop_reason = ?tr.stop_reason(),
        input_tokens = usage.input_tokens,
        output_tokens = usage.output_tokens,
        duration_ms = total.as_millis() as u64,
        "request done"
    );
}

/// The upstream failed after commit. Returns the classification.
pub fn failed_after_commit(
    state: &AppState,
    rt: &Runtime,
    p: &Prepared,
    c: &Committed,
    err: &AttemptError,
) -> UpstreamFailure {
    let failure = err.failure();
    state
        .metrics
        .record_attempt_error(c.account.id(), err.error_type(), failure.label());
    let transitions = rt.pool.report(
        c.slot.lease(),
        pool_outcome(&failure, &p.model.upstream_id),
        now_ms(),
    );
    state.metrics.record_transitions(&transitions);
    tracing::warn!(
        request_id = %p.request_id,
        account = %c.account.id(),
        error = %err,
        class = failure.label(),
        "upstream failed after commit"
    );
    failure
}

/// The client went away mid-stream: no effect on the account's health.
pub fn cancelled(rt: &Runtime, c: &Committed) {
    rt.pool.report(c.slot.lease(), Outcome::Cancelled, now_ms());
}

/// The request ended with an error.
pub fn rejected(state: &AppState, p: &Prepared, e: &GatewayError) {
    state.metrics.record_client_request(
        e.to_api_error().status(),
        &p.client_model,
        p.stream,
        p.received.elapsed(),
        None,
    );
    tracing::info!(
        request_id = %p.request_id,
        model = %p.client_model,
        stream = p.stream,
        outcome = e.label(),
        duration_ms = p.received.elapsed().as_millis() as u64,
        "request done"
    );
}
