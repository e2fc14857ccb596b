//! The chat call in both dialects: headers, authentication, event order, model ids.

use super::*;

#[tokio::test]
async fn q_cli_stream_has_the_service_event_order() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let reply = sim
        .chat(
            Dialect::QCli,
            &token,
            &request("Tell me about rivers and lakes"),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.amazon.eventstream")
    );
    assert!(reply.header("x-amzn-requestid").is_some());
    assert!(reply.decode_error.is_none() && reply.stream_error.is_none() && !reply.transport_error);

    let types = reply.event_types();
    assert_eq!(types[0], "initial-response");
    assert_eq!(types[1], "messageMetadataEvent");
    assert_eq!(types[types.len() - 2], "meteringEvent");
    assert_eq!(types[types.len() - 1], "contextUsageEvent");
    assert!(
        types[2..types.len() - 2]
            .iter()
            .all(|t| *t == "assistantResponseEvent"),
        "{types:?}"
    );
    assert_eq!(
        reply.text_pieces().len(),
        20,
        "default: 20 words, one per event"
    );
    assert_eq!(reply.text().split(' ').count(), 20);
    assert!(
        matches!(&reply.events[0], Event::InitialResponse { conversation_id: Some(id) } if id == "11111111-2222-4333-8444-555555555555")
    );
    assert!(
        matches!(&reply.events[types.len() - 2], Event::Metering { unit: Some(u), usage } if u == "credit" && *usage > 0.0)
    );
}

#[tokio::test]
async fn kiro_stream_has_no_initial_response() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let reply = sim
        .chat(Dialect::Kiro, &token, &request("Tell me about rivers"))
        .await;
    assert_eq!(reply.status, 200);
    let types = reply.event_types();
    assert_eq!(types[0], "messageMetadataEvent");
    assert!(!types.contains(&"initial-response"));
    assert_eq!(types.last(), Some(&"contextUsageEvent"));
}

#[tokio::test]
async fn replies_are_deterministic_and_built_from_the_prompt() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let prompt = "Compare granite basalt marble limestone sandstone";
    let first = sim
        .chat(Dialect::Kiro, &token, &request(prompt))
        .await
        .text();
    let second = sim
        .chat(Dialect::QCli, &token, &request(prompt))
        .await
        .text();
    assert_eq!(first, second);
    let vocabulary: Vec<&str> = prompt.split(' ').collect();
    assert!(first.split(' ').all(|w| vocabulary.contains(&w)), "{first}");
}

#[tokio::test]
async fn context_usage_is_a_quarter_of_the_body_over_the_window() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let body = request(&"word ".repeat(4_000));
    let body_len = serde_json::to_vec(&body).unwrap().len();
    let reply = sim.chat(Dialect::Kiro, &token, &body).await;
    let Some(Event::ContextUsage { percentage }) = reply.events.last() else {
        panic!("no context usage: {:?}", reply.event_types());
    };
    let expected = (body_len / 4) as f64 / 200_000.0 * 100.0;
    assert!(
        (percentage - expected).abs() < 1e-9,
        "{percentage} vs {expected}"
    );
}

#[tokio::test]
async fn q_cli_needs_its_target_and_content_type() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let body = serde_json::to_vec(&request("hi")).unwrap();
    let cases = [
        (None, "application/x-amz-json-1.0"),
        (
            Some("AmazonCodeWhispererStreamingService.SendMessage"),
            "application/x-amz-json-1.0",
        ),
        (Some(Dialect::X_AMZ_TARGET), "application/json"),
    ];
    for (target, content_type) in cases {
        let mut request = sim
            .client
            .post(sim.url("/"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body.clone());
        if let Some(t) = target {
            request = request.header("x-amz-target", t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{target:?} {content_type}");
        assert!(response.headers().contains_key("x-amzn-requestid"));
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer,
            json!({"__type": "com.amazon.coral.service#UnknownOperationException", "message": null})
        );
    }
}

#[tokio::test]
async fn kiro_needs_json() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let response = sim
        .client
        .post(sim.url("/generateAssistantResponse"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(serde_json::to_vec(&request("hi")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn missing_or_unknown_bearer_is_access_denied() {
    let sim = start_default().await;
    let body = serde_json::to_vec(&request("hi")).unwrap();
    let no_token = sim
        .client
        .post(sim.url("/generateAssistantResponse"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let unknown = sim
        .send_chat(Dialect::QCli, "aoaNOTATOKEN", &request("hi"))
        .await;
    for response in [no_token, unknown] {
        assert_eq!(response.status(), 403);
        assert!(
            response.headers()["x-amzn-errortype"]
                .to_str()
                .unwrap()
                .starts_with("AccessDeniedException")
        );
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer,
            json!({"__type": "com.amazon.aws.codewhisperer#AccessDeniedException",
                   "message": "The bearer token included in the request is invalid."})
        );
    }
}

#[tokio::test]
async fn expired_tokens_get_the_expired_body_until_refreshed() {
    let sim = start_default().await;
    let token = sim.token(2).await;
    let (status, _) = sim.post_json("/_sim/expire-tokens", &json!({})).await;
    assert_eq!(status, 200);
    let reply = sim.chat(Dialect::Kiro, &token, &request("hi")).await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.error_body.unwrap(),
        json!({"__type": "com.amazon.aws.codewhisperer#ExpiredTokenException",
               "message": "The security token included in the request is expired."})
    );
    let fresh = sim.token(2).await;
    assert_eq!(
        sim.chat(Dialect::Kiro, &fresh, &request("hi")).await.status,
        200
    );
    // The handle expires tokens the same way.
    sim.handle.expire_access_tokens();
    assert_eq!(
        sim.chat(Dialect::Kiro, &fresh, &request("hi")).await.status,
        403
    );
    let stats = sim.stats().await.account("sim-2");
    assert_eq!(
        (stats.chat_requests, stats.chat_ok, stats.chat_errors),
        (3, 1, 2)
    );
}

#[tokio::test]
async fn model_ids_are_checked() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    for model in qgate_sim::KNOWN_MODELS {
        let mut body = request("hi");
        body["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] = json!(model);
        assert_eq!(
            sim.chat(Dialect::Kiro, &token, &body).await.status,
            200,
            "{model}"
        );
    }
    let mut no_model = request("hi");
    no_model["conversationState"]["currentMessage"]["userInputMessage"]
        .as_object_mut()
        .unwrap()
        .remove("modelId");
    assert_eq!(sim.chat(Dialect::Kiro, &token, &no_model).await.status, 200);

    let mut bad = request("hi");
    bad["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] =
        json!("CLAUDE_SONNET_4_20250514_V1_0");
    let reply = sim.chat(Dialect::QCli, &token, &bad).await;
    assert_eq!(reply.status, 400);
    let body = reply.error_body.unwrap();
    assert_eq!(body["message"], "Invalid model ID");
    assert_eq!(body["reason"], "INVALID_MODEL_ID");
    assert_eq!(
        body["__type"],
        "com.amazon.aws.codewhisperer#ValidationException"
    );
}

#[tokio::test]
async fn last_request_is_what_the_account_received() {
    let sim = start_default().await;
    let token = sim.token(3).await;
    let body = request("remember me");
    sim.chat(Dialect::Kiro, &token, &body).await;
    let response = sim
        .client
        .get(sim.url("/_sim/last-request?account=sim-3"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received: Value = response.json().await.unwrap();
    assert_eq!(received, body);
    let none = sim
        .client
        .get(sim.url("/_sim/last-request?account=sim-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    assert_eq!(
        sim.handle.state().last_request("sim-3").unwrap(),
        serde_json::to_vec(&body).unwrap()
    );
}
