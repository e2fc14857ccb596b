//! Log lines and the request they belong to.
//!
//! Every line logged while a request is handled carries the request's id, method and path
//! (`request{request_id=… method=… path=…}:` in text, a `span` object in JSON), so all of
//! a request's lines can be found by its id. The context is a task-local set by
//! [`crate::middleware::request_context`] and carried into the stream's future (which the
//! response body polls after the handler has returned), not a
//! `tracing` span: the span registry keeps one slot per span that was ever open at once,
//! each with a small map allocated for the fmt layer's fields and kept for reuse, and
//! after a burst of thousands of concurrent requests those maps pinned ~4 KiB of heap
//! pages per request for the process's life (docs/benchmarks.md, eighth round). A
//! task-local costs nothing per request beyond the id it carries, and nothing per poll.
//!
//! [`Text`] and [`Json`] format events for `tracing_subscriber::fmt`, with the request
//! context first; spans that libraries open are still printed (text) as fmt does.

use std::future::Future;
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// What each line of a request says about it.
#[derive(Debug)]
pub struct RequestLog {
    pub request_id: String,
    pub method: String,
    pub path: String,
}

tokio::task_local! {
    static REQUEST: Arc<RequestLog>;
}

/// The request the current task serves, if any.
pub fn current() -> Option<Arc<RequestLog>> {
    REQUEST.try_with(Arc::clone).ok()
}

/// Runs `fut` as part of the request `ctx`: its log lines carry the request's id.
pub fn scope<F: Future>(ctx: Arc<RequestLog>, fut: F) -> impl Future<Output = F::Output> {
    REQUEST.scope(ctx, fut)
}

/// Runs `fut` as part of the request the caller serves, if any: for a future that is
/// spawned, or polled after the handler has returned (a streamed response's body).
pub fn in_current_request<F>(fut: F) -> std::pin::Pin<Box<dyn Future<Output = F::Output> + Send>>
where
    F: Future + Send + 'static,
{
    match current() {
        Some(ctx) => Box::pin(scope(ctx, fut)),
        None => Box::pin(fut),
    }
}

/// Plain text lines: `<time> <LEVEL> request{…}: <spans>: <target>: <message> <fields>`,
/// the layout of `tracing_subscriber`'s default format. The level is coloured when the
/// writer takes colour (a terminal).
#[derive(Debug, Clone, Copy, Default)]
pub struct Text;

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        SystemTime.format_time(&mut writer)?;
        let level = *event.metadata().level();
        if writer.has_ansi_escapes() {
            write!(writer, " {}{level:>5}\x1b[0m ", level_colour(level))?;
        } else {
            write!(writer, " {level:>5} ")?;
        }
        if let Some(r) = current() {
            write!(
                writer,
                "request{{request_id={} method={} path={}}}: ",
                r.request_id, r.method, r.path
            )?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}", span.name())?;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                writer.write_str(": ")?;
            }
        }
        write!(writer, "{}: ", event.metadata().target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn level_colour(level: Level) -> &'static str {
    match level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        Level::TRACE => "\x1b[35m",
    }
}

/// One JSON object per line: `timestamp`, `level`, the event's fields (`message` among
/// them) at the top level, `target`, and the request as
/// `"span": {"request_id", "method", "path", "name": "request"}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        // In this order, as `tracing_subscriber`'s JSON lines had them.
        let mut line: Vec<(&str, serde_json::Value)> = Vec::with_capacity(12);
        line.push(("timestamp", time.into()));
        line.push(("level", event.metadata().level().as_str().into()));
        event.record(&mut JsonFields(&mut line));
        line.push(("target", event.metadata().target().into()));
        if let Some(r) = current() {
            line.push((
                "span",
                serde_json::json!({
                    "request_id": r.request_id,
                    "method": r.method,
                    "path": r.path,
                    "name": "request",
                }),
            ));
        }
        let text = serde_json::to_string(&Ordered(&line)).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Key-value pairs written as one JSON object, in their order.
struct Ordered<'a>(&'a [(&'a str, serde_json::Value)]);

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Collects an event's fields as JSON values, in the order they were recorded.
struct JsonFields<'a, 'b>(&'a mut Vec<(&'b str, serde_json::Value)>);

impl JsonFields<'_, '_> {
    fn push(&mut self, field: &Field, value: serde_json::Value) {
        self.0.push((field.name(), value));
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_of<E>(format: E, f: impl FnOnce()) -> String
    where
        E: FormatEvent<
                tracing_subscriber::Registry,
                tracing_subscriber::fmt::format::DefaultFields,
            > + Send
            + Sync
            + 'static,
    {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(Level::DEBUG)
            .with_writer(move || out.clone())
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    fn request() -> Arc<RequestLog> {
        Arc::new(RequestLog {
            request_id: "req_abc".into(),
            method: "POST".into(),
            path: "/v1/messages".into(),
        })
    }

    /// Runs `f` inside the request's scope on a current-thread runtime.
    fn in_request(f: impl FnOnce()) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(scope(request(), async move { f() }));
    }

    #[test]
    fn text_lines_carry_the_request_then_library_spans_then_the_event() {
        let text = lines_of(Text, || {
            in_request(|| {
                let span = tracing::info_span!("handshake", peer = "x");
                let _e = span.enter();
                tracing::info!(account = "sim-1", n = 3, "request done");
            });
            tracing::warn!("outside");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains(
                "  INFO request{request_id=req_abc method=POST path=/v1/messages}: \
                 handshake{peer=\"x\"}: qgate_gateway::logging::tests: request done \
                 account=\"sim-1\" n=3"
            ),
            "{text}"
        );
        assert!(
            lines[1].ends_with(" WARN qgate_gateway::logging::tests: outside"),
            "{text}"
        );
        assert!(
            !text.contains('\x1b'),
            "no colour without a terminal: {text}"
        );
    }

    #[test]
    fn json_lines_have_flat_fields_and_the_request_as_span() {
        let text = lines_of(Json, || {
            in_request(|| {
                tracing::info!(account = "sim-1", tokens = 7u64, ok = true, "request done");
            });
            tracing::debug!(reason = ?Some(1), "outside");
        });
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let l = &lines[0];
        assert_eq!(l["message"], "request done");
        assert_eq!(l["level"], "INFO");
        assert_eq!(l["account"], "sim-1");
        assert_eq!(l["tokens"], 7);
        assert_eq!(l["ok"], true);
        assert_eq!(l["target"], "qgate_gateway::logging::tests");
        assert_eq!(l["span"]["request_id"], "req_abc");
        assert_eq!(l["span"]["method"], "POST");
        assert_eq!(l["span"]["path"], "/v1/messages");
        assert_eq!(l["span"]["name"], "request");
        assert!(l["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["reason"], "Some(1)");
        // Keys in the order a reader expects: time and level first, the request last.
        let first = text.lines().next().unwrap();
        let at = |key: &str| first.find(&format!("\"{key}\":")).unwrap();
        assert!(at("timestamp") < at("level"), "{first}");
        assert!(at("level") < at("message"), "{first}");
        assert!(at("message") < at("account"), "{first}");
        assert!(at("account") < at("target"), "{first}");
        assert!(at("target") < at("span"), "{first}");
        assert!(lines[1].get("span").is_none(), "{text}");
    }

    #[test]
    fn a_task_spawned_in_the_request_keeps_its_context() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let seen = rt.block_on(scope(request(), async {
            let before = current().map(|r| r.request_id.clone());
            let task = tokio::spawn(in_current_request(async {
                current().map(|r| r.request_id.clone())
            }));
            let bare = tokio::spawn(async { current().is_some() });
            (before, task.await.unwrap(), bare.await.unwrap())
        }));
        assert_eq!(seen.0.as_deref(), Some("req_abc"));
        assert_eq!(seen.1.as_deref(), Some("req_abc"));
        assert!(!seen.2, "a task spawned without it has no request");
        assert!(current().is_none());
    }
}
