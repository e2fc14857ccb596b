//! `[[sim ...]]` directives, tool calls, tool-result quoting, thinking, output limit.

use super::*;
use qgate_sim::FaultKind;
use std::time::Duration;

fn tool_uses(reply: &Transcript) -> Vec<(String, String, String, bool)> {
    reply
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ToolUse {
                tool_use_id,
                name,
                input,
                stop,
            } => Some((tool_use_id.clone(), name.clone(), input.clone(), *stop)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn words_and_chunk_set_the_text_shape() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let reply = sim
        .chat(
            Dialect::Kiro,
            &token,
            &request("alpha beta gamma [[sim words=10 chunk=3]]"),
        )
        .await;
    let pieces = reply.text_pieces();
    assert_eq!(pieces.len(), 4, "{pieces:?}");
    assert_eq!(reply.text().split(' ').count(), 10);
    assert!(
        reply
            .text()
            .split(' ')
            .all(|w| ["alpha", "beta", "gamma"].contains(&w)),
        "{}",
        reply.text()
    );
    assert!(
        !reply.text().contains("sim"),
        "the directive is not quoted back"
    );
}

#[tokio::test(start_paused = true)]
async fn first_ms_and_delay_ms_pace_the_events() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let started = tokio::time::Instant::now();
    let reply = sim
        .chat(
            Dialect::QCli,
            &token,
            &request("pace me [[sim words=4 first_ms=5000 delay_ms=1000]]"),
        )
        .await;
    assert_eq!(reply.text_pieces().len(), 4);
    // initial-response, metadata, 4 texts, metering, context usage: 8 frames. The
    // initial-response goes with the head; the 7 after it are paced: 6 gaps.
    assert_eq!(reply.events.len(), 8);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(5000 + 6 * 1000)
            && elapsed < Duration::from_millis(5000 + 7 * 1000),
        "{elapsed:?}"
    );
}

/// How long after sending the request the first body bytes of a Q-CLI reply arrive.
async fn first_body_bytes_after(sim: &TestSim, token: &str, prompt: &str) -> Duration {
    let started = tokio::time::Instant::now();
    let mut response = sim.send_chat(Dialect::QCli, token, &request(prompt)).await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("a body");
    assert!(!first.is_empty());
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn the_q_cli_initial_response_goes_with_the_head_and_slow_first_byte_sends_nothing() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    // The service sends `initial-response` when the call starts; pacing is for the model's
    // output after it.
    let paced = first_body_bytes_after(&sim, &token, "[[sim words=2 first_ms=5000]]").await;
    assert!(paced < Duration::from_millis(5000), "{paced:?}");
    // A slow first byte is silence from the head on.
    let slow = first_body_bytes_after(
        &sim,
        &token,
        "[[sim error=slow_first_byte first_ms=5000 words=2]]",
    )
    .await;
    assert!(slow >= Duration::from_millis(5000), "{slow:?}");
}

#[tokio::test]
async fn tool_directive_calls_a_declared_tool_in_fragments() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let body = request_with_tools(
        r#"list it [[sim tool=bash input={"command": "ls -la /tmp", "timeout": 5}]]"#,
        &["Read", "Bash"],
    );
    let reply = sim.chat(Dialect::Kiro, &token, &body).await;
    assert_eq!(reply.status, 200);
    let types = reply.event_types();
    let first_tool = types.iter().position(|t| *t == "toolUseEvent").unwrap();
    assert!(
        types[..first_tool].contains(&"assistantResponseEvent"),
        "a short text comes first: {types:?}"
    );
    assert_eq!(
        &types[types.len() - 2..],
        ["meteringEvent", "contextUsageEvent"]
    );

    let fragments = tool_uses(&reply);
    assert!(fragments.len() >= 3, "{fragments:?}");
    let id = &fragments[0].0;
    assert!(
        fragments.iter().all(|f| &f.0 == id && f.1 == "Bash"),
        "{fragments:?}"
    );
    let (last, rest) = fragments.split_last().unwrap();
    assert!(
        last.3 && rest.iter().all(|f| !f.3),
        "only the last has stop: {fragments:?}"
    );
    assert!(
        rest.iter().filter(|f| !f.2.is_empty()).count() >= 2,
        "input split: {fragments:?}"
    );
    let input: String = fragments.iter().map(|f| f.2.as_str()).collect();
    let input: Value = serde_json::from_str(&input).unwrap();
    assert_eq!(input, json!({"command": "ls -la /tmp", "timeout": 5}));
}

#[tokio::test]
async fn undeclared_tools_are_not_called() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let body = request_with_tools("[[sim tool=Write input={}]]", &["Read"]);
    let reply = sim.chat(Dialect::Kiro, &token, &body).await;
    assert!(tool_uses(&reply).is_empty());
    assert!(
        reply.text().contains("Write is not declared"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn tool_results_are_quoted_and_end_the_loop() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let mut body = tool_result_request("tooluse_abc", "README.md\nsrc");
    body["conversationState"]["currentMessage"]["userInputMessage"]["content"] =
        json!("[[sim tool=Bash input={}]]");
    let reply = sim.chat(Dialect::QCli, &token, &body).await;
    assert_eq!(reply.status, 200, "{:?}", reply.error_body);
    assert!(
        reply
            .text()
            .starts_with("Tool result tooluse_abc: README.md\nsrc"),
        "{}",
        reply.text()
    );
    assert!(tool_uses(&reply).is_empty());
}

#[tokio::test]
async fn thinking_directive_opens_with_split_thinking_tags() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    for mode in ["enabled", "adaptive"] {
        let prompt = format!(
            "<thinking_mode>{mode}</thinking_mode><max_thinking_length>16000</max_thinking_length>\nWhy is the sky blue"
        );
        let reply = sim.chat(Dialect::Kiro, &token, &request(&prompt)).await;
        let text = reply.text();
        assert!(text.starts_with("<thinking>"), "{text}");
        let close = text.find("</thinking>").expect("closed");
        assert!(
            text[close..].len() > "</thinking>".len(),
            "an answer follows"
        );
        let pieces = reply.text_pieces();
        assert!(
            pieces
                .iter()
                .all(|p| !p.contains("<thinking>") && !p.contains("</thinking>")),
            "tags split: {pieces:?}"
        );
    }
    let plain = sim
        .chat(Dialect::Kiro, &token, &request("Why is the sky blue"))
        .await;
    assert!(!plain.text().contains("<thinking>"));
}

#[tokio::test]
async fn thinking_directive_in_the_leading_system_turn_is_honoured() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let mut body = request("Why is the sky blue");
    body["conversationState"]["history"] = serde_json::json!([
        {"userInputMessage": {"content": "<thinking_mode>enabled</thinking_mode><max_thinking_length>2000</max_thinking_length>\nBe brief.", "origin": "CLI"}},
        {"assistantResponseMessage": {"content": "I will follow these instructions."}}
    ]);
    let reply = sim.chat(Dialect::Kiro, &token, &body).await;
    assert!(reply.text().starts_with("<thinking>"), "{}", reply.text());
}

#[tokio::test]
async fn asking_for_too_many_words_hits_the_output_limit() {
    let sim = start(SimConfig {
        max_output_words: 30,
        ..SimConfig::default()
    })
    .await;
    let token = sim.token(1).await;
    let reply = sim
        .chat(
            Dialect::Kiro,
            &token,
            &request("long please [[sim words=31 chunk=10]]"),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text().split(' ').count(), 30);
    let error = reply.stream_error.expect("exception frame");
    assert!(error.is_output_limit(), "{error:?}");
    let at_limit = sim
        .chat(Dialect::Kiro, &token, &request("[[sim words=30]]"))
        .await;
    assert!(at_limit.stream_error.is_none());
}

#[tokio::test]
async fn error_directive_injects_a_fault_for_one_request() {
    let sim = start_default().await;
    let token = sim.token(2).await;
    for kind in FaultKind::ALL.into_iter().filter(|k| !k.hits_refresh()) {
        if kind == FaultKind::SlowFirstByte {
            continue; // covered with paused time below
        }
        let reply = sim
            .chat(
                Dialect::Kiro,
                &token,
                &request(&format!("hello world [[sim error={}]]", kind.as_str())),
            )
            .await;
        let streamed = reply.status == 200;
        let in_stream = matches!(
            kind,
            FaultKind::MidstreamException | FaultKind::MidstreamReset | FaultKind::BadCrc
        );
        assert_eq!(streamed, in_stream, "{kind:?}: {reply:?}");
        if in_stream {
            assert!(
                reply.stream_error.is_some()
                    || reply.transport_error
                    || reply.decode_error.is_some(),
                "{kind:?}"
            );
        }
    }
    assert_eq!(
        sim.chat(Dialect::Kiro, &token, &request("hello world"))
            .await
            .status,
        200
    );
    assert_eq!(sim.stats().await.account("sim-2").faults_fired, 11);
}

#[tokio::test(start_paused = true)]
async fn error_directive_slow_first_byte_uses_first_ms() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let started = tokio::time::Instant::now();
    let reply = sim
        .chat(
            Dialect::Kiro,
            &token,
            &request("[[sim error=slow_first_byte first_ms=12000]]"),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_secs(12));
    assert!(started.elapsed() < Duration::from_secs(30));
}

fn monotonic_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (now.tv_sec as u64) * 1_000_000_000 + now.tv_nsec as u64
}

#[tokio::test]
async fn stamp_prefixes_each_word_chunk_with_its_send_time() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let before = monotonic_nanos();
    let reply = sim
        .chat(
            Dialect::Kiro,
            &token,
            &request("alpha beta gamma [[sim words=6 chunk=2 stamp=1]]"),
        )
        .await;
    let after = monotonic_nanos();
    let pieces = reply.text_pieces();
    assert_eq!(pieces.len(), 3, "{pieces:?}");
    let mut previous = before;
    for piece in &pieces {
        let (stamp, words) = piece
            .strip_prefix('t')
            .and_then(|rest| rest.split_once(' '))
            .unwrap_or_else(|| panic!("no stamp in {piece:?}"));
        let stamp: u64 = stamp.parse().unwrap();
        assert!(
            (previous..=after).contains(&stamp),
            "{stamp} not in {previous}..={after}"
        );
        previous = stamp;
        assert!(
            words
                .split_whitespace()
                .all(|w| ["alpha", "beta", "gamma"].contains(&w)),
            "{piece:?}"
        );
        assert_eq!(words.split_whitespace().count(), 2, "{piece:?}");
    }
}

#[tokio::test]
async fn without_stamp_the_text_carries_no_stamps() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let reply = sim
        .chat(
            Dialect::Kiro,
            &token,
            &request("alpha beta [[sim words=4]]"),
        )
        .await;
    assert!(
        reply
            .text()
            .split(' ')
            .all(|w| ["alpha", "beta"].contains(&w)),
        "{}",
        reply.text()
    );
}
