//! Every metric name lives here. Counters and histograms are updated at the moment the
//! event happens (by the code that also logs it); gauges that mirror pool and token state
//! are computed from the live state at scrape time ([`collector`]), so they are never
//! stale. The seed's names and labels are kept exactly (`amazonq_*`); ours use `qgate_`.

mod collector;
mod ops;
mod redis;
mod workers;

pub use collector::StateCollector;
pub use ops::{OpsMetrics, RetiredRefreshes};
pub use redis::RedisCollector;
pub use workers::WorkerCollector;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use qgate_pool::{AccountId, Transition};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabel {
    pub account_id: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountStatus {
    pub account_id: Arc<str>,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountErrorType {
    pub account_id: Arc<str>,
    pub error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelStream {
    pub model: String,
    pub stream: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub model: String,
    pub direction: &'static str,
    pub key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusCodeLabel {
    pub status: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn seed_response_buckets() -> Histogram {
    Histogram::new([0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0])
}

fn duration_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ])
}

/// Microsecond-resolution buckets (10 µs … 50 ms) for gateway overhead and relay latency.
fn micro_buckets() -> Histogram {
    Histogram::new([
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
        0.025, 0.05,
    ])
}

/// The registry and every counter/histogram the request path updates.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    // seed
    requests: Family<AccountStatus, Counter>,
    errors: Family<AccountErrorType, Counter>,
    response_seconds: HistogramFamily<AccountLabel>,
    active: Family<AccountLabel, Gauge>,
    breaker_opened: Family<AccountLabel, Counter>,
    // ours
    client_requests: Family<StatusCodeLabel, Counter>,
    request_duration: HistogramFamily<ModelStream>,
    ttft: HistogramFamily<ModelLabel>,
    overhead: Histogram,
    chunk_relay: Histogram,
    attempts: Family<OutcomeLabel, Counter>,
    queue_wait: Histogram,
    tokens: Family<TokenLabels, Counter>,
    ops: OpsMetrics,
    /// Client requests finished, any status (the idle test of `background::memory`).
    finished: AtomicU64,
    /// Per-key usage, fed by `add_tokens` (the one place request tokens are counted).
    key_book: Option<Arc<crate::keys::KeyBook>>,
    /// Where account transitions go besides the breaker counter (webhooks).
    transition_sink: Option<crate::webhooks::WebhookHub>,
    /// Multi-instance mode: transitions decided here are shared with the other instances.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<AccountStatus, Counter>::default();
        let errors = Family::<AccountErrorType, Counter>::default();
        let response_seconds =
            HistogramFamily::<AccountLabel>::new_with_constructor(seed_response_buckets);
        let active = Family::<AccountLabel, Gauge>::default();
        let breaker_opened = Family::<AccountLabel, Counter>::default();
        registry.register(
            "amazonq_requests",
            "Upstream attempts per account, by status (success|error)",
            requests.clone(),
        );
        registry.register(
            "amazonq_errors",
            "Upstream errors per account, by error type",
            errors.clone(),
        );
        registry.register(
            "amazonq_response_seconds",
            "Duration of successful upstream requests per account",
            response_seconds.clone(),
        );
        registry.register(
            "amazonq_active_requests",
            "Requests currently holding an account",
            active.clone(),
        );
        registry.register(
            "amazonq_circuit_breaker_opened",
            "Times an account's circuit breaker opened",
            breaker_opened.clone(),
        );

        let client_requests = Family::<StatusCodeLabel, Counter>::default();
        let request_duration =
            HistogramFamily::<ModelStream>::new_with_constructor(duration_buckets);
        let ttft = HistogramFamily::<ModelLabel>::new_with_constructor(duration_buckets);
        let overhead = micro_buckets();
        let chunk_relay = micro_buckets();
        let attempts = Family::<OutcomeLabel, Counter>::default();
        let queue_wait = duration_buckets();
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "qgate_client_requests",
            "Client requests to /v1/messages by HTTP status",
            client_requests.clone(),
        );
        registry.register(
            "qgate_request_duration_seconds",
            "Client request duration by model and mode",
            request_duration.clone(),
        );
        registry.register(
            "qgate_time_to_first_token_seconds",
            "Time from request to the first content sent, by model",
            ttft.clone(),
        );
        registry.register(
            "qgate_gateway_overhead_seconds",
            "Request time not spent waiting on the upstream",
            overhead.clone(),
        );
        registry.register(
            "qgate_chunk_relay_seconds",
            "Time from an upstream chunk arriving to its SSE bytes being handed to the client connection",
            chunk_relay.clone(),
        );
        registry.register(
            "qgate_upstream_attempts",
            "Upstream attempts by outcome class",
            attempts.clone(),
        );
        registry.register(
            "qgate_queue_wait_seconds",
            "Time requests waited for a free account",
            queue_wait.clone(),
        );
        registry.register(
            "qgate_tokens",
            "Input/output tokens by model and client key",
            tokens.clone(),
        );
        let ops = OpsMetrics::default();
        ops.register(&mut registry);
        Metrics {
            ops,
            finished: AtomicU64::new(0),
            key_book: None,
            transition_sink: None,
            cluster: None,
            registry,
            requests,
            errors,
            response_seconds,
            active,
            breaker_opened,
            client_requests,
            request_duration,
            ttft,
            overhead,
            chunk_relay,
            attempts,
            queue_wait,
            tokens,
        }
    }

    /// Registers the scrape-time collector of pool and token state.
    pub fn register_collector(&mut self, c: StateCollector) {
        self.registry.register_collector(Box::new(c));
    }

    /// Per-key usage counters updated with every token count.
    pub fn attach_key_book(&mut self, book: Arc<crate::keys::KeyBook>) {
        self.key_book = Some(book);
    }

    /// Account transitions are also sent here (the webhook queue).
    pub fn attach_transition_sink(&mut self, hub: crate::webhooks::WebhookHub) {
        self.transition_sink = Some(hub);
    }

    /// Account transitions are also published to the other instances.
    pub fn attach_cluster(&mut self, cluster: Arc<crate::cluster::Cluster>) {
        self.cluster = Some(cluster);
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    pub fn active_inc(&self, account: &AccountId) {
        self.active.get_or_create(&acc(account)).inc();
    }

    pub fn active_dec(&self, account: &AccountId) {
        self.active.get_or_create(&acc(account)).dec();
    }

    /// A failed upstream attempt (or token refresh).
    pub fn record_attempt_error(&self, account: &AccountId, error_type: &str, class: &'static str) {
        self.errors
            .get_or_create(&AccountErrorType {
                account_id: account.shared(),
                error_type: error_type.to_owned(),
            })
            .inc();
        self.requests
            .get_or_create(&AccountStatus {
                account_id: account.shared(),
                status: "error",
            })
            .inc();
        self.attempts
            .get_or_create(&OutcomeLabel { outcome: class })
            .inc();
    }

    /// A successful upstream request, with its full upstream duration.
    pub fn record_success(&self, account: &AccountId, upstream: Duration) {
        self.requests
            .get_or_create(&AccountStatus {
                account_id: account.shared(),
                status: "success",
            })
            .inc();
        self.response_seconds
            .get_or_create(&acc(account))
            .observe(upstream.as_secs_f64());
        self.attempts
            .get_or_create(&OutcomeLabel { outcome: "success" })
            .inc();
    }

    /// Pool state transitions (breaker openings are counted here).
    pub fn record_transitions(&self, transitions: &[Transition]) {
        for t in transitions {
            if t.is_breaker_opened() {
                self.breaker_opened.get_or_create(&acc(&t.account)).inc();
            }
            tracing::info!(account = %t.account, from = t.from.as_str(), to = t.to.as_str(),
                until_ms = ?t.until_ms, reason = %t.reason, "account transition");
        }
        if let Some(sink) = &self.transition_sink
            && !transitions.is_empty()
        {
            sink.transitions(transitions);
        }
        if let Some(cluster) = &self.cluster {
            cluster.transitions(transitions);
        }
    }

    pub fn observe_queue_wait(&self, since: tokio::time::Instant) {
        self.queue_wait.observe(since.elapsed().as_secs_f64());
    }

    /// A finished client request.
    pub fn record_client_request(
        &self,
        status: u16,
        model: &str,
        stream: bool,
        total: Duration,
        overhead: Option<Duration>,
    ) {
        self.finished.fetch_add(1, Ordering::Relaxed);
        self.client_requests
            .get_or_create(&StatusCodeLabel { status })
            .inc();
        self.request_duration
            .get_or_create(&ModelStream {
                model: model.to_owned(),
                stream,
            })
            .observe(total.as_secs_f64());
        if let Some(o) = overhead {
            self.overhead.observe(o.as_secs_f64());
        }
    }

    /// Client requests finished so far.
    pub fn finished_requests(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    pub fn observe_ttft(&self, model: &str, ttft: Duration) {
        self.ttft
            .get_or_create(&ModelLabel {
                model: model.to_owned(),
            })
            .observe(ttft.as_secs_f64());
    }

    pub fn observe_chunk_relay(&self, d: Duration) {
        self.chunk_relay.observe(d.as_secs_f64());
    }

    pub fn add_tokens(&self, model: &str, key: &str, input: u64, output: u64) {
        if let Some(book) = &self.key_book {
            book.add_tokens(key, input, output);
        }
        // One label set for both directions: the strings are copied once.
        let mut labels = TokenLabels {
            model: model.to_owned(),
            direction: "input",
            key: key.to_owned(),
        };
        self.tokens.get_or_create(&labels).inc_by(input);
        labels.direction = "output";
        self.tokens.get_or_create(&labels).inc_by(output);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn acc(id: &AccountId) -> AccountLabel {
    AccountLabel {
        account_id: id.shared(),
    }
}
