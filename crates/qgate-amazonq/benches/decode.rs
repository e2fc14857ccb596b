//! Event-stream decoding of a streamed reply: this crate's decoder (frames read in place,
//! then typed events) beside `aws-smithy-eventstream`'s reader on the same bytes (frames
//! only, no event parsing), so one run gives the ratio. `cargo bench -p qgate-amazonq`.

use aws_smithy_eventstream::frame::read_message_from;
use bytes::{Buf, Bytes};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qgate_amazonq::{Event, EventStreamDecoder};
use std::hint::black_box;

/// A reply as the service streams it: initial response, `words` text chunks, metadata.
fn reply(words: usize) -> Bytes {
    let mut events = vec![Event::InitialResponse {
        conversation_id: Some("c-6b1f".into()),
    }];
    for i in 0..words {
        events.push(Event::AssistantResponse {
            content: format!("word{i} "),
        });
    }
    events.push(Event::ContextUsage { percentage: 3.5 });
    events.push(Event::Metering {
        unit: Some("credit".into()),
        usage: 0.02,
    });
    let bytes: Vec<u8> = events.iter().flat_map(|e| e.to_frame().to_vec()).collect();
    Bytes::from(bytes)
}

/// Upstream chunks as a socket delivers them: here 1 400 bytes at a time.
fn decode(bytes: &[u8]) -> usize {
    let mut d = EventStreamDecoder::new();
    let mut n = 0;
    for chunk in bytes.chunks(1400) {
        d.push(chunk);
        while let Ok(Some(ev)) = d.next_event() {
            black_box(&ev);
            n += 1;
        }
    }
    n
}

fn aws_frames(bytes: &Bytes) -> usize {
    let mut rest = bytes.clone();
    let mut n = 0;
    while rest.remaining() > 0 {
        match read_message_from(&mut rest) {
            Ok(m) => black_box(&m),
            Err(_) => break,
        };
        n += 1;
    }
    n
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_reply");
    for words in [20, 200] {
        let bytes = reply(words);
        let frames = words as u64 + 3;
        group.throughput(Throughput::Elements(frames));
        group.bench_function(format!("{words}_chunks_to_events"), |b| {
            b.iter(|| decode(black_box(&bytes)))
        });
        group.bench_function(format!("{words}_chunks_aws_frames_only"), |b| {
            b.iter(|| aws_frames(black_box(&bytes)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
