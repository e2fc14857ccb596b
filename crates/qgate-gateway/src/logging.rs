//! Log lines and the request they belong to.
//!
//! Every line logged while a request is handled carries the request's id, method and path
//! (`request{request_id=… method=… path=…}:` in text, a `span` object in JSON), so all of
//! a request's lines can be found by its id. The context is a task-local set by
//! [`crate::middleware::RequestContext`] and carried into the stream's future (which the
//! response body polls after the handler has returned), not a
//! `tracing` span: the span registry keeps one slot per span that was ever open at once,
//! each with a small map allocated for the fmt layer's fields and kept for reuse, and
//! after a burst of thousands of concurrent requests those maps pinned ~4 KiB of heap
//! pages per request for the process's life (docs/benchmarks.md, eighth round). A
//! task-local costs nothing per request beyond the id it carries, and nothing per poll.
//!
//! [`Text`] and [`Json`] format events for `tracing_subscriber::fmt`, with the request
//! context first; spans that libraries open are still printed (text) as fmt does.
//! [`TextFields`] writes the fields of text lines in fmt's layout without its per-field
//! styling, and escapes control characters in every value, not only the message.
//!
//! Every request logs a line, so its cost is every request's: with fmt's own field and
//! time formatting it was ~14 k instructions of a 20-frame streamed request's ~196 k
//! (docs/benchmarks.md, fourteenth round).

use std::cell::Cell;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::UNIX_EPOCH;
use tokio::task::futures::TaskLocalFuture;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
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
pub fn scope<F: Future>(ctx: Arc<RequestLog>, fut: F) -> TaskLocalFuture<Arc<RequestLog>, F> {
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
        write_time(&mut writer)?;
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

/// The time as `SystemTime` writes it (RFC 3339 in UTC with microseconds), with the date
/// and time of day formatted once a second per thread instead of for every line.
fn write_time(writer: &mut Writer<'_>) -> std::fmt::Result {
    thread_local! {
        /// The second last formatted on this thread and its `YYYY-MM-DDTHH:MM:SS.`.
        static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
    }
    let Ok(since) = std::time::SystemTime::now().duration_since(UNIX_EPOCH) else {
        return SystemTime.format_time(writer);
    };
    let second = since.as_secs();
    let (cached, mut prefix) = SECOND.get();
    if cached != second {
        match second_prefix(second) {
            Some(p) => {
                prefix = p;
                SECOND.set((second, p));
            }
            None => return SystemTime.format_time(writer),
        }
    }
    let mut line = [0u8; 27];
    line[..20].copy_from_slice(&prefix);
    let mut micros = since.subsec_micros();
    for digit in line[20..26].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    line[26] = b'Z';
    writer.write_str(std::str::from_utf8(&line).map_err(|_| std::fmt::Error)?)
}

/// `YYYY-MM-DDTHH:MM:SS.` of a Unix second; `None` past year 9999.
fn second_prefix(second: u64) -> Option<[u8; 20]> {
    let at = jiff::Timestamp::from_second(i64::try_from(second).ok()?).ok()?;
    // Whole seconds print without a fraction: `YYYY-MM-DDTHH:MM:SSZ`.
    let text = at.to_string();
    let date_time = text.strip_suffix('Z').filter(|t| t.len() == 19)?;
    let mut prefix = [b'.'; 20];
    prefix[..19].copy_from_slice(date_time.as_bytes());
    Some(prefix)
}

/// Fields of text lines, in `tracing_subscriber`'s default layout: the message, then
/// `name=value` separated by spaces, strings quoted, `%` values as displayed and `?` values
/// as debugged. Unlike the default it styles nothing, so a field costs its name and value
/// written once, and it escapes control characters in every value (a client's model name
/// could otherwise start a forged line or colour a terminal), where the default escapes
/// only the message's terminal escapes.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFields;

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visitor = TextVisitor {
            out: Escaping(writer),
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct TextVisitor<'a> {
    out: Escaping<Writer<'a>>,
    first: bool,
    result: std::fmt::Result,
}

impl TextVisitor<'_> {
    /// Writes the separator and `name=` (nothing for the message), then the value.
    fn field(
        &mut self,
        field: &Field,
        value: impl FnOnce(&mut Escaping<Writer<'_>>) -> std::fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.out.0.write_char(' ')?;
            }
            let name = field.name();
            if name != "message" {
                self.out
                    .0
                    .write_str(name.strip_prefix("r#").unwrap_or(name))?;
                self.out.0.write_char('=')?;
            }
            value(&mut self.out)
        })();
    }
}

impl Visit for TextVisitor<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out.0, "{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out.0, "{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| {
            out.0.write_str(if value { "true" } else { "false" })
        });
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, |out| out.write_str(value));
        } else {
            self.field(field, |out| write!(out, "{value:?}"));
        }
    }
    /// The error, then its chain as the default writes it: ` name.sources=[a, b]`.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |out| {
            write!(out, "{value}")?;
            let mut source = value.source();
            if source.is_some() {
                write!(out.0, " {}.sources=[", field.name())?;
            }
            let mut first = true;
            while let Some(s) = source {
                if !std::mem::take(&mut first) {
                    out.0.write_str(", ")?;
                }
                write!(out, "{s}")?;
                source = s.source();
            }
            if !first {
                out.0.write_char(']')?;
            }
            Ok(())
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.field(field, |out| write!(out, "{value:?}"));
    }
}

/// Writes through to `W`, with C0 and C1 control characters and DEL written as escapes
/// (`\n`, `\x1b`, `\u{9b}`), so a value can neither end its line nor reach a terminal as a
/// control sequence.
struct Escaping<W>(W);

impl<W: std::fmt::Write> std::fmt::Write for Escaping<W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        // C1 characters are U+0080..U+009F, `C2 80`..`C2 9F` in UTF-8.
        if !s.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2) {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                '\x00'..='\x1f' | '\x7f' => write!(self.0, "\\x{:02x}", c as u32)?,
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
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
    /// Written straight into one line, keys in this order as `tracing_subscriber`'s JSON
    /// lines had them (a map of `serde_json::Value`s built and then serialised cost ~18 k
    /// instructions a request, docs/benchmarks.md, fourteenth round).
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::with_capacity(384);
        line.push_str("{\"timestamp\":\"");
        write_time(&mut Writer::new(&mut line))?;
        line.push_str("\",\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push('"');
        let mut fields = JsonFields {
            line: &mut line,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        line.push_str(",\"target\":");
        push_json_str(&mut line, event.metadata().target());
        if let Some(r) = current() {
            line.push_str(",\"span\":{\"request_id\":");
            push_json_str(&mut line, &r.request_id);
            line.push_str(",\"method\":");
            push_json_str(&mut line, &r.method);
            line.push_str(",\"path\":");
            push_json_str(&mut line, &r.path);
            line.push_str(",\"name\":\"request\"}");
        }
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Writes an event's fields as `,"name":value`, in the order they were recorded: numbers
/// and booleans as JSON's, everything else as a JSON string.
struct JsonFields<'a> {
    line: &'a mut String,
    result: std::fmt::Result,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        push_json_str(self.line, field.name());
        self.line.push(':');
    }

    /// An integer is written as it displays; writing to a `String` cannot fail.
    fn integer(&mut self, field: &Field, value: impl std::fmt::Display) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn display(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        self.key(field);
        self.line.push('"');
        if self.result.is_ok() {
            self.result = JsonEscaping(&mut *self.line).write_fmt(value);
        }
        self.line.push('"');
    }
}

impl Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // serde_json's own number (`null` when not finite).
        self.line
            .push_str(&serde_json::Value::from(value).to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(self.line, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.display(field, format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.display(field, format_args!("{value:?}"));
    }
}

/// `text` as a JSON string, escaped as serde_json escapes it.
fn push_json_str(line: &mut String, text: &str) {
    line.push('"');
    escape_json(line, text);
    line.push('"');
}

/// Appends `text` with JSON's required escapes, exactly serde_json's: `\"`, `\\`, and
/// the control characters U+0000–U+001F (`\n`, `\r`, `\t`, `\b`, `\f`, else `\u00XX`).
fn escape_json(line: &mut String, text: &str) {
    let mut plain = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        line.push_str(&text[plain..i]);
        if escape.is_empty() {
            line.push_str("\\u00");
            line.push(char::from(HEX[usize::from(byte >> 4)]));
            line.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            line.push_str(escape);
        }
        plain = i + 1;
    }
    line.push_str(&text[plain..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A JSON string's contents written through `fmt`.
struct JsonEscaping<'a>(&'a mut String);

impl std::fmt::Write for JsonEscaping<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        escape_json(self.0, s);
        Ok(())
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
        lines_with(
            tracing_subscriber::fmt::format::DefaultFields::new(),
            format,
            f,
        )
    }

    fn lines_with<N, E>(fields: N, format: E, f: impl FnOnce()) -> String
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
        E: FormatEvent<tracing_subscriber::Registry, N> + Send + Sync + 'static,
    {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(Level::DEBUG)
            .with_writer(move || out.clone())
            .fmt_fields(fields)
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

    /// An error with a source, to check the chain's layout.
    #[derive(Debug)]
    struct Chained(std::io::Error);
    impl std::fmt::Display for Chained {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer")
        }
    }
    impl std::error::Error for Chained {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// Lines without their time (the first 27 bytes).
    fn untimed(text: &str) -> Vec<String> {
        text.lines().map(|l| l[27..].to_owned()).collect()
    }

    #[test]
    fn text_fields_write_what_the_default_fields_write() {
        let events = || {
            in_request(|| {
                let span = tracing::info_span!("handshake", peer = "x", n = 2u64);
                let _e = span.enter();
                tracing::info!(
                    account = "sim-1",
                    n = 3u64,
                    delta = -4i64,
                    stream = true,
                    model = %"claude-sonnet-4-5",
                    stop = ?Some("end_turn"),
                    r#type = "x",
                    "request done"
                );
                tracing::info!("with {} args", 2);
            });
            tracing::warn!(
                error = &std::io::Error::other("refused") as &dyn std::error::Error,
                chained = &Chained(std::io::Error::other("inner")) as &dyn std::error::Error,
                "outside"
            );
        };
        let ours = lines_with(TextFields, Text, events);
        let default = lines_of(Text, events);
        assert_eq!(untimed(&ours), untimed(&default), "{ours}\n{default}");
        assert_eq!(ours.lines().count(), 3, "{ours}");
        assert!(
            ours.contains(" error=refused chained=outer chained.sources=[inner]\n"),
            "{ours}"
        );
        assert!(ours.contains(" account=\"sim-1\" n=3 delta=-4 stream=true model=claude-sonnet-4-5 stop=Some(\"end_turn\") type=\"x\""), "{ours}");
    }

    #[test]
    fn text_fields_escape_control_characters_in_every_value() {
        let hostile = "m\nINFO forged line \x1b[31mred\u{9b}2J\x7f";
        let text = lines_with(TextFields, Text, || {
            tracing::info!(model = %hostile, key = hostile, "request \x1b[0m done\r");
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            !text.contains('\x1b')
                && !text.contains('\u{9b}')
                && !text.contains('\r')
                && !text.contains('\x7f'),
            "{text:?}"
        );
        assert!(
            text.contains(
                r"request \x1b[0m done\r model=m\nINFO forged line \x1b[31mred\u{9b}2J\x7f key="
            ),
            "{text}"
        );
        // Plain text is written as it is.
        let plain = lines_with(
            TextFields,
            Text,
            || tracing::info!(model = %"ünï cödé", "ok"),
        );
        assert!(plain.ends_with(" ok model=ünï cödé\n"), "{plain}");
    }

    #[test]
    fn the_time_is_written_as_fmt_writes_it() {
        for _ in 0..3 {
            let mut ours = String::new();
            write_time(&mut Writer::new(&mut ours)).unwrap();
            let mut theirs = String::new();
            SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            assert_eq!(ours.len(), 27, "{ours}");
            assert_eq!(theirs.len(), 27, "{theirs}");
            assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
            let parsed: jiff::Timestamp = ours.parse().unwrap();
            let reference: jiff::Timestamp = theirs.parse().unwrap();
            let apart = reference.duration_since(parsed).as_secs_f64();
            assert!((0.0..1.0).contains(&apart), "{ours} vs {theirs}");
            // The same second, unless one crossed into the next between the two calls.
            if ours[..19] == theirs[..19] {
                return;
            }
        }
        panic!("three calls in a row crossed a second");
    }

    #[test]
    fn a_second_prefix_is_the_date_and_time_of_day() {
        let prefix = second_prefix(1_795_804_275).unwrap();
        assert_eq!(&prefix, b"2026-11-27T18:31:15.");
        assert_eq!(&second_prefix(0).unwrap(), b"1970-01-01T00:00:00.");
        assert!(second_prefix(u64::MAX).is_none());
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

    proptest::proptest! {
        #[test]
        fn json_strings_are_escaped_as_serde_json_escapes_them(text in ".*|[\\x00-\\x7f]{0,40}") {
            let mut ours = String::new();
            push_json_str(&mut ours, &text);
            proptest::prop_assert_eq!(ours, serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn json_lines_carry_any_value_exactly(text in ".*|[\\x00-\\x7f]{0,40}", n in proptest::num::u64::ANY, i in proptest::num::i64::ANY) {
            let out = lines_of(Json, || {
                tracing::info!(s = text.as_str(), d = %text, e = ?text, n, i, ok = false, x = 0.5f64, "a {} b", text);
            });
            proptest::prop_assert_eq!(out.lines().count(), 1);
            let line: serde_json::Value = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(&line["s"], &serde_json::json!(text));
            proptest::prop_assert_eq!(&line["d"], &serde_json::json!(text));
            proptest::prop_assert_eq!(&line["e"], &serde_json::json!(format!("{text:?}")));
            proptest::prop_assert_eq!(&line["message"], &serde_json::json!(format!("a {text} b")));
            proptest::prop_assert_eq!(&line["n"], &serde_json::json!(n));
            proptest::prop_assert_eq!(&line["i"], &serde_json::json!(i));
            proptest::prop_assert_eq!(&line["ok"], &serde_json::json!(false));
            proptest::prop_assert_eq!(&line["x"], &serde_json::json!(0.5));
        }
    }

    #[test]
    fn json_numbers_that_are_not_finite_are_null() {
        let out = lines_of(Json, || {
            tracing::info!(x = f64::NAN, y = f64::INFINITY, "m")
        });
        let line: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(line["x"].is_null() && line["y"].is_null(), "{out}");
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
