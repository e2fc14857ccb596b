//! Tracing setup: `RUST_LOG` filter (default `info`), text or JSON lines. Text is
//! coloured only on a terminal (and never with `NO_COLOR` set): log files, pipes,
//! journald and `docker logs` get plain lines.
//!
//! Lines reach stderr in batches ([`Batched`]): gathered in memory and written when 32 KiB
//! have gathered, every 50 ms, before a panic message, and when the process ends (the
//! guard [`init`] returns, [`fatal`]). One `write` per request line was ~10 % of a streamed
//! request's CPU under load (docs/benchmarks.md, seventh round). The price: a `kill -9`
//! loses at most the last 50 ms of lines.

use crate::LogFormat;
use std::fmt::Display;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Written out once this much has gathered, whatever the time.
const FLUSH_AT: usize = 32 * 1024;
/// Written out at least this often while lines are waiting.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

static BATCH: OnceLock<Batched> = OnceLock::new();

/// Log lines on their way to stderr. Each event is one `write` of a whole formatted line,
/// appended under the lock, so lines never interleave and keep their order.
#[derive(Clone)]
pub struct Batched {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    pending: Vec<u8>,
    sink: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Batched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batched")
    }
}

impl Batched {
    fn new(sink: Box<dyn Write + Send>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                pending: Vec::with_capacity(FLUSH_AT),
                sink,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes out what has gathered.
    pub fn flush(&self) {
        self.lock().write_out();
    }
}

impl Inner {
    /// Write errors are dropped: there is nowhere left to report them.
    fn write_out(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.sink.write_all(&self.pending);
            let _ = self.sink.flush();
            self.pending.clear();
        }
    }
}

impl Write for &Batched {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut inner = self.lock();
        inner.pending.extend_from_slice(line);
        if inner.pending.len() >= FLUSH_AT {
            inner.write_out();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = &'a Batched;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Writes the log out when dropped (hold it in `main`).
#[must_use = "the log is written out when this is dropped"]
pub struct Flush;

impl Drop for Flush {
    fn drop(&mut self) {
        flush();
    }
}

pub fn init(format: LogFormat) -> Flush {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour =
        io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let batch = BATCH
        .get_or_init(|| Batched::new(Box::new(io::stderr())))
        .clone();
    let flusher = batch.clone();
    // A thread of its own: it must run whatever the async runtimes are doing.
    let _ = std::thread::Builder::new()
        .name("qgate-log".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flusher.flush();
            }
        });
    // A panic's message goes straight to stderr: the lines before it go first.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush();
        report(info);
    }));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(batch);
    match format {
        LogFormat::Text => builder.init(),
        // The request span carries `request_id`, so every JSON line of a request has it.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Flush
}

/// Writes out every line logged so far.
pub fn flush() {
    if let Some(batch) = BATCH.get() {
        batch.flush();
    }
}

/// Writes out the log, prints `message` to stderr and exits with status 2.
pub fn fatal(message: impl Display) -> ! {
    flush();
    eprintln!("{message}");
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_gather_until_the_threshold_then_go_out_whole_and_in_order() {
        let sink = Shared::default();
        let batch = Batched::new(Box::new(sink.clone()));
        let mut writer = batch.make_writer();
        writer.write_all(b"first line\n").unwrap();
        writer.write_all(b"second line\n").unwrap();
        assert!(sink.0.lock().unwrap().is_empty(), "nothing written yet");

        let long = [b"x".repeat(FLUSH_AT), b"\n".to_vec()].concat();
        writer.write_all(&long).unwrap();
        let written = sink.0.lock().unwrap().clone();
        assert_eq!(
            written.len(),
            23 + long.len(),
            "the threshold writes all out"
        );
        assert!(written.starts_with(b"first line\nsecond line\nxxx"));

        writer.write_all(b"third\n").unwrap();
        assert_eq!(sink.0.lock().unwrap().len(), written.len());
        batch.flush();
        assert!(sink.0.lock().unwrap().ends_with(b"x\nthird\n"));
        batch.flush();
        assert!(
            sink.0.lock().unwrap().ends_with(b"x\nthird\n"),
            "nothing twice"
        );
    }
}
