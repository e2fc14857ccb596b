//! Criterion benchmarks of the translation hot path.
//!
//! * `bench_request_*`: Anthropic request → Amazon Q body for a real Claude Code first
//!   turn (parse excluded and included), and the token estimate `count_tokens` uses.
//! * `bench_response_*`: Amazon Q events → Anthropic SSE bytes through the response
//!   state machine, the per-chunk work of every streamed reply.
//! * `bench_translation_floor`: all the translation a 20-frame streamed request needs
//!   (the harness's `frames20` scenario), with no I/O: what a gateway that translates
//!   must spend per request on top of what a plain relay spends (docs/benchmarks.md,
//!   fourteenth round).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qgate_amazonq::{Event, EventStreamDecoder};
use qgate_anthropic::MessagesRequest;
use qgate_translate::ToolNameMap;
use qgate_translate::request::{RequestOptions, translate};
use qgate_translate::response::{MessageAccumulator, StreamConfig, StreamTranslator};
use qgate_translate::tokens::{estimate_request, estimate_text};
use std::hint::black_box;

fn response_config(thinking: bool) -> StreamConfig {
    StreamConfig {
        message_id: "msg_0123456789abcdefABCDEF01".to_owned(),
        model: "claude-sonnet-4-5".to_owned(),
        input_tokens: 12_000,
        thinking,
        tool_names: ToolNameMap::default(),
        context_window: 200_000,
    }
}

/// A typical reply: 1 000 text chunks of a few words, then a tool call in 20 fragments.
fn reply_events(thinking: bool) -> Vec<Event> {
    let mut events = Vec::with_capacity(1_030);
    if thinking {
        events.push(Event::AssistantResponse {
            content: "<thinking>\nLet me plan the change first.</thinking>\n\n".to_owned(),
        });
    }
    for i in 0..1_000 {
        events.push(Event::AssistantResponse {
            content: format!("word{i} and some more text, "),
        });
    }
    let input = format!(
        "{{\"file_path\":\"src/main.rs\",\"content\":\"{}\"}}",
        "fn main() {}\\n".repeat(100)
    );
    let fragments = 20;
    let step = input.len().div_ceil(fragments);
    for (n, piece) in input.as_bytes().chunks(step).enumerate() {
        events.push(Event::ToolUse {
            tool_use_id: "tooluse_bench".to_owned(),
            name: "Write".to_owned(),
            input: String::from_utf8_lossy(piece).into_owned(),
            stop: n + 1 == fragments,
        });
    }
    events.push(Event::ContextUsage { percentage: 6.5 });
    events
}

fn translate_to_sse(events: &[Event], thinking: bool, sse: &mut Vec<u8>) {
    let mut translator = StreamTranslator::new(response_config(thinking));
    let mut out = Vec::new();
    for event in events {
        translator.on_event(event.clone(), &mut out);
        for stream_event in out.drain(..) {
            stream_event.write_sse(sse);
        }
    }
    translator.finish(&mut out);
    for stream_event in out.drain(..) {
        stream_event.write_sse(sse);
    }
}

fn bench_response_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("response_events");
    for thinking in [false, true] {
        let events = reply_events(thinking);
        group.throughput(Throughput::Elements(events.len() as u64));
        let name = if thinking { "sse_thinking" } else { "sse" };
        let mut sse = Vec::with_capacity(256 * 1024);
        group.bench_function(name, |b| {
            b.iter(|| {
                sse.clear();
                translate_to_sse(black_box(&events), thinking, &mut sse);
                black_box(sse.len())
            })
        });
    }
    let events = reply_events(false);
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("non_streaming", |b| {
        b.iter(|| {
            let mut translator = StreamTranslator::new(response_config(false));
            let mut accumulator = MessageAccumulator::new();
            let mut out = Vec::new();
            for event in black_box(&events) {
                translator.on_event(event.clone(), &mut out);
                for stream_event in out.drain(..) {
                    accumulator.apply(&stream_event);
                }
            }
            translator.finish(&mut out);
            for stream_event in out.drain(..) {
                accumulator.apply(&stream_event);
            }
            black_box(accumulator.finish().map(|message| message.content.len()))
        })
    });
    group.finish();
}

/// The captured first turn of a Claude Code session (78 KB: 24 tools, system blocks,
/// thinking, metadata), as the bytes a client sends.
fn first_turn_body() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/claude-code/first-turn.json"
    );
    let capture: serde_json::Value = match std::fs::read(path).map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(capture)) => capture,
        other => panic!("cannot read {path}: {other:?}"),
    };
    match serde_json::to_vec(&capture["body"]) {
        Ok(body) => body,
        Err(e) => panic!("cannot serialise the fixture body: {e}"),
    }
}

const REQUEST_OPTIONS: RequestOptions<'static> = RequestOptions {
    model_id: "claude-opus-4.8",
    origin: "AI_EDITOR",
    profile_arn: None,
    session_id: Some("0149c1dd-471e-41b2-a989-8a28586cdc81"),
};

fn parse_request(body: &[u8]) -> MessagesRequest {
    match serde_json::from_slice(body) {
        Ok(req) => req,
        Err(e) => panic!("fixture does not parse: {e}"),
    }
}

/// Anthropic request → Amazon Q body for the first-turn fixture, with the JSON parse
/// excluded (`translate`) and included (`parse_and_translate`), plus the upstream body's
/// serialisation, which the gateway does next.
fn bench_request_first_turn(c: &mut Criterion) {
    let body = first_turn_body();
    let req = parse_request(&body);
    let mut group = c.benchmark_group("request_first_turn");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("translate", |b| {
        b.iter(|| translate(black_box(&req), &REQUEST_OPTIONS).map(|t| t.input_tokens))
    });
    group.bench_function("parse_and_translate", |b| {
        b.iter(|| {
            translate(&parse_request(black_box(&body)), &REQUEST_OPTIONS).map(|t| t.input_tokens)
        })
    });
    if let Ok(translated) = translate(&req, &REQUEST_OPTIONS) {
        group.bench_function("serialize_upstream", |b| {
            b.iter(|| serde_json::to_vec(black_box(&translated.body)).map(|v| v.len()))
        });
    }
    group.finish();
}

/// The token estimate alone (what `count_tokens` pays on top of translation).
fn bench_request_estimate(c: &mut Criterion) {
    let body = first_turn_body();
    let req = parse_request(&body);
    let mut group = c.benchmark_group("request_estimate");
    group.throughput(Throughput::Bytes(body.len() as u64));
    if let Ok(translated) = translate(&req, &REQUEST_OPTIONS) {
        group.bench_function("estimate_request", |b| {
            b.iter(|| estimate_request(black_box(&translated.body)))
        });
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    group.bench_function("estimate_text", |b| {
        b.iter(|| estimate_text(black_box(&text)))
    });
    group.finish();
    // A short streamed reply's text: what output usage estimates at the end of a message.
    let reply = "The gateway relayed twenty words of a streamed reply back to the client, \
                 each one in a frame of its own.";
    let mut group = c.benchmark_group("reply_estimate");
    group.throughput(Throughput::Bytes(reply.len() as u64));
    group.bench_function("estimate_text", |b| {
        b.iter(|| estimate_text(black_box(reply)))
    });
    group.finish();
    // A long reply of prose and code: the output estimate of a long answer, and the part
    // of the input estimate a new message costs.
    let long_reply = format!(
        "{}\n```rust\nfn main() {{\n    println!(\"{{}}\", 42);\n}}\n```\n",
        reply.repeat(60)
    );
    let mut group = c.benchmark_group("long_reply_estimate");
    group.throughput(Throughput::Bytes(long_reply.len() as u64));
    group.bench_function("estimate_text", |b| {
        b.iter(|| estimate_text(black_box(&long_reply)))
    });
    group.finish();
}

/// The harness's `frames20` request (`qgate-bench`'s `short_request`), as the bytes a
/// client sends.
const FRAMES20_BODY: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Summarise the benchmark results for the quarterly gateway report in plain words covering throughput latency memory and every error seen [[sim words=20 chunk=1 stamp=1]]"}]}"#;

/// The simulator's reply to it as the upstream socket delivers it: initial response, 20
/// one-word text frames, metering and context usage.
fn frames20_reply() -> Vec<u8> {
    let words = "Summarise the benchmark results for the quarterly gateway report in plain \
                 words covering throughput latency memory and every error seen again";
    let mut events = vec![Event::InitialResponse {
        conversation_id: Some("0149c1dd-471e-41b2-a989-8a28586cdc81".into()),
    }];
    events.extend(words.split(' ').take(20).map(|w| Event::AssistantResponse {
        content: format!("{w} "),
    }));
    events.push(Event::Metering {
        unit: Some("credit".into()),
        usage: 0.02,
    });
    events.push(Event::ContextUsage { percentage: 0.4 });
    events.iter().flat_map(|e| e.to_frame().to_vec()).collect()
}

/// Client body → upstream body bytes: parse, translate (which estimates the input),
/// serialise.
fn frames20_request(body: &[u8]) -> usize {
    let req = parse_request(body);
    match translate(&req, &REQUEST_OPTIONS) {
        Ok(t) => serde_json::to_vec(&t.body).map_or(0, |v| v.len()) + t.input_tokens as usize,
        Err(e) => panic!("the frames20 body does not translate: {e}"),
    }
}

/// Upstream bytes → SSE bytes: decode the frames, run the state machine (which estimates
/// the output at the end), write each event.
fn frames20_response(reply: &[u8], sse: &mut Vec<u8>) -> usize {
    let mut decoder = EventStreamDecoder::new();
    let mut translator = StreamTranslator::new(response_config(false));
    let mut out = Vec::new();
    decoder.push(reply);
    while let Ok(Some(event)) = decoder.next_event() {
        translator.on_event(event, &mut out);
        for stream_event in out.drain(..) {
            stream_event.write_sse(sse);
        }
    }
    translator.finish(&mut out);
    for stream_event in out.drain(..) {
        stream_event.write_sse(sse);
    }
    sse.len()
}

/// The whole translation of one `frames20` request, and its two halves. Compared in
/// docs/benchmarks.md with nginx's whole CPU per request for the same reply: translation
/// alone sets a floor under qgate's ratio to a relay that does none.
fn bench_translation_floor(c: &mut Criterion) {
    let body = FRAMES20_BODY.as_bytes();
    let reply = frames20_reply();
    let mut sse = Vec::with_capacity(16 * 1024);
    assert!(frames20_response(&reply, &mut sse) > 0);
    assert!(
        String::from_utf8_lossy(&sse)
            .matches("event: content_block_delta\n")
            .count()
            == 20,
        "the reply is not 20 text deltas"
    );
    let mut group = c.benchmark_group("translation_floor_frames20");
    group.bench_function("request", |b| b.iter(|| frames20_request(black_box(body))));
    group.bench_function("response", |b| {
        b.iter(|| {
            sse.clear();
            frames20_response(black_box(&reply), &mut sse)
        })
    });
    group.bench_function("whole", |b| {
        b.iter(|| {
            sse.clear();
            frames20_request(black_box(body)) + frames20_response(black_box(&reply), &mut sse)
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_request_first_turn,
    bench_request_estimate,
    bench_response_events,
    bench_translation_floor
);
criterion_main!(benches);
