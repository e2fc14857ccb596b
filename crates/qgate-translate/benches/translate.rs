//! Criterion benchmarks of the translation hot path.
//!
//! * `bench_request_*`: Anthropic request → Amazon Q body for a real Claude Code first
//!   turn (parse excluded and included), and the token estimate `count_tokens` uses.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qgate_anthropic::MessagesRequest;
use qgate_translate::request::{RequestOptions, translate};
use qgate_translate::tokens::{estimate_request, estimate_text};
use std::hint::black_box;

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
}

criterion_group!(benches, bench_request_first_turn, bench_request_estimate);
criterion_main!(benches);
