//! Tracing setup: `RUST_LOG` filter (default `info`), text or JSON lines. Text is
//! coloured only on a terminal (and never with `NO_COLOR` set): log files, pipes,
//! journald and `docker logs` get plain lines.

use crate::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Each line of a request carries its id, method and path (`qgate_gateway::logging`).
    match format {
        LogFormat::Text => builder
            .with_ansi(colour)
            .fmt_fields(qgate_gateway::logging::TextFields)
            .event_format(qgate_gateway::logging::Text)
            .init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .event_format(qgate_gateway::logging::Json)
            .init(),
    }
}
