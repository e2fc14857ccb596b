use super::*;
use aws_smithy_types::DateTime;
use proptest::prelude::*;

fn sample_events() -> Vec<Event> {
    vec![
        Event::InitialResponse {
            conversation_id: Some("c-1".into()),
        },
        Event::AssistantResponse {
            content: "Hello, wörld ✓".into(),
        },
        Event::ToolUse {
            tool_use_id: "tooluse_1".into(),
            name: "Bash".into(),
            input: "{\"command\":".into(),
            stop: false,
        },
        Event::ToolUse {
            tool_use_id: "tooluse_1".into(),
            name: "Bash".into(),
            input: "\"ls\"}".into(),
            stop: true,
        },
        Event::ContextUsage { percentage: 12.5 },
        Event::Metering {
            unit: Some("credit".into()),
            usage: 0.25,
        },
        Event::TokenUsage {
            uncached_input_tokens: Some(10),
            output_tokens: Some(20),
            cache_read_input_tokens: None,
            cache_write_input_tokens: Some(1),
        },
        Event::MessageMetadata {
            conversation_id: Some("c".into()),
            utterance_id: Some("u".into()),
        },
        Event::Reasoning {
            text: "hmm".into(),
            signature: Some("sig".into()),
        },
        Event::InvalidState {
            reason: "INVALID_TASK_ASSIST_PLAN".into(),
            message: "bad".into(),
        },
    ]
}

fn decode_all(chunks: &[&[u8]]) -> Result<Vec<Event>, DecodeFailure> {
    let mut d = EventStreamDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        while let Some(ev) = d.next_event()? {
            out.push(ev);
        }
    }
    d.finish()?;
    Ok(out)
}

#[test]
fn every_event_round_trips() {
    let events = sample_events();
    let bytes: Vec<u8> = events.iter().flat_map(|e| e.to_frame().to_vec()).collect();
    assert_eq!(decode_all(&[&bytes]).unwrap(), events);
}

#[test]
fn all_ten_header_value_types_decode() {
    let headers = vec![
        Header::new(":message-type", HeaderValue::String("event".into())),
        Header::new(
            ":event-type",
            HeaderValue::String("assistantResponseEvent".into()),
        ),
        Header::new("t", HeaderValue::Bool(true)),
        Header::new("f", HeaderValue::Bool(false)),
        Header::new("b", HeaderValue::Byte(-3)),
        Header::new("s", HeaderValue::Int16(-300)),
        Header::new("i", HeaderValue::Int32(70_000)),
        Header::new("l", HeaderValue::Int64(1 << 40)),
        Header::new("a", HeaderValue::ByteArray(Bytes::from_static(&[1, 2, 3]))),
        Header::new(
            "ts",
            HeaderValue::Timestamp(DateTime::from_millis(1_700_000_000_123)),
        ),
        Header::new(
            "u",
            HeaderValue::Uuid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        ),
    ];
    let msg = Message::new_from_parts(headers.clone(), Bytes::from_static(b"{\"content\":\"x\"}"));
    let frame = encode_message(&msg);
    let back = decode_one(frame.clone()).unwrap();
    assert_eq!(back.headers(), &headers[..]);
    assert_eq!(
        decode_all(&[&frame]).unwrap(),
        vec![Event::AssistantResponse {
            content: "x".into()
        }]
    );
}

#[test]
fn unknown_events_are_ignored() {
    let mut bytes = encode_event_frame("codeReferenceEvent", b"{\"references\":[]}").to_vec();
    bytes.extend_from_slice(&encode_event_frame("followupPromptEvent", b"{}"));
    bytes.extend_from_slice(
        &Event::AssistantResponse {
            content: "a".into(),
        }
        .to_frame(),
    );
    let mut d = EventStreamDecoder::new();
    d.push(&bytes);
    assert_eq!(
        d.next_event().unwrap(),
        Some(Event::AssistantResponse {
            content: "a".into()
        })
    );
    assert_eq!(d.ignored_frames(), 2);
    assert_eq!(d.frames(), 3);
}

#[test]
fn exception_and_error_frames_are_typed() {
    let ex = StreamError::Exception {
        exception_type: "ContentLengthExceededException".into(),
        message: "too long".into(),
        reason: None,
    };
    let err = decode_all(&[&ex.to_frame()]).unwrap_err();
    assert_eq!(err, DecodeFailure::Stream(ex.clone()));
    assert!(ex.is_output_limit());
    let svc = StreamError::Service {
        code: "InternalFailure".into(),
        message: "boom".into(),
    };
    assert_eq!(
        decode_all(&[&svc.to_frame()]).unwrap_err(),
        DecodeFailure::Stream(svc)
    );
}

#[test]
fn oversized_frame_rejected_from_prelude_alone() {
    let total: u32 = MAX_FRAME_LEN + 1;
    let mut prelude = Vec::new();
    prelude.extend_from_slice(&total.to_be_bytes());
    prelude.extend_from_slice(&0u32.to_be_bytes());
    let crc = crc32fast::hash(&prelude);
    prelude.extend_from_slice(&crc.to_be_bytes());
    let mut d = EventStreamDecoder::new();
    d.push(&prelude);
    assert_eq!(
        d.next_event().unwrap_err(),
        DecodeFailure::Decode(DecodeError::FrameTooLarge(total))
    );
}

#[test]
fn truncated_stream_is_an_error() {
    let frame = Event::AssistantResponse {
        content: "abc".into(),
    }
    .to_frame();
    let err = decode_all(&[&frame[..frame.len() - 1]]).unwrap_err();
    assert_eq!(
        err,
        DecodeFailure::Decode(DecodeError::Truncated(frame.len() - 1))
    );
}

#[test]
fn bad_payload_of_known_event_is_an_error() {
    let frame = encode_event_frame("toolUseEvent", b"not json");
    assert!(matches!(
        decode_all(&[&frame]),
        Err(DecodeFailure::Decode(DecodeError::Payload { .. }))
    ));
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        ".{0,40}".prop_map(|content| Event::AssistantResponse { content }),
        (
            "[a-z0-9_]{1,12}",
            "[A-Za-z]{1,10}",
            ".{0,30}",
            any::<bool>()
        )
            .prop_map(|(tool_use_id, name, input, stop)| Event::ToolUse {
                tool_use_id,
                name,
                input,
                stop
            }),
        (0u32..400).prop_map(|p| Event::ContextUsage {
            percentage: f64::from(p) / 4.0
        }),
        Just(Event::InitialResponse {
            conversation_id: None
        }),
    ]
}

proptest! {
    #[test]
    fn any_split_decodes_to_same_events(
        events in prop::collection::vec(arb_event(), 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let bytes: Vec<u8> = events.iter().flat_map(|e| e.to_frame().to_vec()).collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(&bytes[last..p]);
            last = p;
        }
        chunks.push(&bytes[last..]);
        prop_assert_eq!(decode_all(&chunks).unwrap(), events);
    }

    /// Bytes pushed while earlier frames are still undecoded: a read takes at most one
    /// event per push, so the buffer holds decoded frames, whole ones and a partial one at
    /// once, and is compacted or grown under them.
    #[test]
    fn pushes_ahead_of_reads_decode_to_same_events(
        events in prop::collection::vec(arb_event(), 0..12),
        sizes in prop::collection::vec(1usize..300, 1..40),
    ) {
        let bytes: Vec<u8> = events.iter().flat_map(|e| e.to_frame().to_vec()).collect();
        let mut d = EventStreamDecoder::new();
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            rest = tail;
            d.push(chunk);
            if let Some(ev) = d.next_event().unwrap() {
                out.push(ev);
            }
        }
        while let Some(ev) = d.next_event().unwrap() {
            out.push(ev);
        }
        d.finish().unwrap();
        prop_assert_eq!(out, events);
    }

    #[test]
    fn any_single_byte_corruption_is_an_error(
        events in prop::collection::vec(arb_event(), 1..5),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes: Vec<u8> = events.iter().flat_map(|e| e.to_frame().to_vec()).collect();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(decode_all(&[&bytes]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), split in any::<prop::sample::Index>()) {
        let p = split.index(bytes.len() + 1);
        let _ = decode_all(&[&bytes[..p], &bytes[p..]]);
    }

    #[test]
    fn truncation_anywhere_is_an_error(events in prop::collection::vec(arb_event(), 1..5), at in any::<prop::sample::Index>()) {
        let bytes: Vec<u8> = events.iter().flat_map(|e| e.to_frame().to_vec()).collect();
        let cut = at.index(bytes.len());
        // Cutting exactly on a frame boundary is a valid (shorter) stream.
        let mut boundaries = vec![0usize];
        for e in &events { boundaries.push(boundaries.last().copied().unwrap_or(0) + e.to_frame().len()); }
        prop_assume!(!boundaries.contains(&cut));
        prop_assert!(decode_all(&[&bytes[..cut]]).is_err());
    }
}

/// Any header of any of the ten value types, with a short name.
fn arb_header() -> impl Strategy<Value = Header> {
    let value = prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Int16),
        any::<i32>().prop_map(HeaderValue::Int32),
        any::<i64>().prop_map(HeaderValue::Int64),
        prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(|b| HeaderValue::ByteArray(Bytes::from(b))),
        ".{0,12}".prop_map(|s| HeaderValue::String(s.into())),
        any::<i64>().prop_map(|ms| HeaderValue::Timestamp(DateTime::from_millis(ms / 1000))),
        any::<u128>().prop_map(HeaderValue::Uuid),
    ];
    // Often one of the two names the reader picks out, so repeats and non-string values
    // of them are covered.
    let name = prop_oneof![
        Just(":message-type".to_owned()),
        Just(":event-type".to_owned()),
        ".{1,8}",
    ];
    (name, value).prop_map(|(name, value)| Header::new(name, value))
}

/// Rewrites both checksums, so a changed frame reaches the header and length checks.
fn fix_checksums(frame: &mut [u8]) {
    let crc = crc32fast::hash(&frame[..8]);
    frame[8..12].copy_from_slice(&crc.to_be_bytes());
    let end = frame.len() - 4;
    let crc = crc32fast::hash(&frame[..end]);
    frame[end..].copy_from_slice(&crc.to_be_bytes());
}

proptest! {
    /// The in-place reader accepts exactly the frames `aws-smithy-eventstream` accepts and
    /// reads the same string headers and payload from them — for well-formed frames and
    /// for frames with any byte changed behind valid checksums.
    #[test]
    fn the_in_place_reader_agrees_with_the_aws_reader(
        headers in prop::collection::vec(arb_header(), 0..6),
        payload in prop::collection::vec(any::<u8>(), 0..40),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let msg = Message::new_from_parts(headers, Bytes::from(payload));
        let mut bytes = encode_message(&msg).to_vec();
        prop_assume!(bytes.len() >= 16);
        for (at, value) in &edits {
            // Anywhere after the total length (which only says where the frame ends).
            let i = 4 + at.index(bytes.len() - 8);
            bytes[i] = *value;
        }
        fix_checksums(&mut bytes);
        let ours = frame::Frame::parse(&bytes);
        let theirs = read_message_from(Bytes::from(bytes.clone()));
        match (&ours, &theirs) {
            (Ok(f), Ok(m)) => {
                let ours_headers: Vec<(String, Option<String>)> = f
                    .header_iter()
                    .map(|h| h.map(|(n, v)| (n.to_owned(), v.map(str::to_owned))))
                    .collect::<Result<_, _>>()
                    .unwrap();
                let theirs_headers: Vec<(String, Option<String>)> = m
                    .headers()
                    .iter()
                    .map(|h| (h.name().as_str().to_owned(), h.value().as_string().ok().map(|s| s.as_str().to_owned())))
                    .collect();
                // The two headers picked out while checking: the first of each name,
                // when it is a string.
                let first = |name: &str| {
                    theirs_headers
                        .iter()
                        .find(|(n, _)| n == name)
                        .and_then(|(_, v)| v.clone())
                };
                prop_assert_eq!(f.message_type.map(<[u8]>::to_vec), first(":message-type").map(String::into_bytes));
                prop_assert_eq!(f.event_type.map(str::to_owned), first(":event-type"));
                prop_assert_eq!(ours_headers, theirs_headers);
                prop_assert_eq!(f.payload, &m.payload()[..]);
            }
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "disagree on {:?}: ours {:?}, aws {:?}", bytes, ours.map(|_| ()), theirs.map(|_| ())),
        }
    }
}

/// Releasing the buffer while waiting loses nothing: a partial frame is kept, and a
/// drained decoder takes the next bytes as before.
#[test]
fn releasing_a_drained_buffer_keeps_partial_frames() {
    let events = sample_events();
    let bytes: Vec<u8> = events.iter().flat_map(|e| e.to_frame().to_vec()).collect();
    let mut d = EventStreamDecoder::new();
    let mut out = Vec::new();
    for chunk in bytes.chunks(37) {
        d.push(chunk);
        while let Some(ev) = d.next_event().unwrap() {
            out.push(ev);
        }
        d.release_if_drained();
    }
    d.finish().unwrap();
    assert_eq!(out, events);
    // Drained at the end: nothing is held while waiting.
    assert_eq!(d.buf.capacity(), 0);
}
