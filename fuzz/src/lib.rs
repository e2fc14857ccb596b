//! The properties qgate's fuzz targets check, kept out of the `fuzz_targets/` entry
//! points so each target is one line and the checks can be read (and replayed) as code:
//!
//! * [`decode`] — the AWS event-stream decoder on raw bytes and on valid frames, cut into
//!   arbitrary chunks: never a panic, chunking never changes the outcome, valid frames
//!   decode to the events that were encoded, a corrupted frame is an error at that frame.
//! * [`request`] — the request translator on structured arbitrary Anthropic requests (and
//!   on raw JSON bodies seeded from real Claude Code traffic): never a panic, and every
//!   translation the gateway would send passes the service's validator.
//! * [`stream`] — the response state machine on arbitrary Amazon Q event sequences: the
//!   output is always a valid Anthropic stream, it survives the SSE JSON round trip, and
//!   the non-streaming accumulator says exactly what the stream says.
//!
//! A failed property panics: that is how libFuzzer learns about it. Findings already
//! reported can be stepped around in exploration runs ([`known`]). `QGATE_FUZZ_DUMP=1`
//! prints what a structured input decodes to (run the target binary on the input file).

pub mod decode;
pub mod known;
pub mod request;
pub mod stream;

/// The stream rules real Anthropic SDKs rely on, shared with the translator's property
/// test (one validator, not a copy that could drift).
#[path = "../../crates/qgate-translate/tests/response_stream/validator.rs"]
pub mod validator;

/// Finite `f64`s from small integers: the JSON round trip through `serde_json` is exact
/// for these, so equality after decoding is a fair check.
pub fn exact_float(milli: i32) -> f64 {
    f64::from(milli) / 1000.0
}
