//! Fault injection: every kind, its triggers, its scope, and how the gateway's own
//! classifier reads the bodies it produces.

use super::*;
use qgate_amazonq::classify::UpstreamFailure;
use qgate_amazonq::classify_http_error;
use qgate_sim::{FaultKind, FaultSpec};
use std::time::Duration;

async fn inject(sim: &TestSim, fault: Value) {
    let (status, body) = sim.post_json("/_sim/faults", &fault).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn http_faults_answer_the_service_bodies() {
    let sim = start_default().await;
    let token = sim.token(2).await;
    let cases = [
        (
            "throttle",
            429,
            "ThrottlingException",
            Some("USER_REQUEST_RATE_EXCEEDED"),
        ),
        (
            "monthly_quota",
            429,
            "ThrottlingException",
            Some("MONTHLY_REQUEST_COUNT"),
        ),
        (
            "quota_402",
            402,
            "ServiceQuotaExceededException",
            Some("MONTHLY_REQUEST_COUNT"),
        ),
        (
            "suspended",
            403,
            "AccessDeniedException",
            Some("TEMPORARILY_SUSPENDED"),
        ),
        ("expired_token", 403, "ExpiredTokenException", None),
        (
            "invalid_model",
            400,
            "ValidationException",
            Some("INVALID_MODEL_ID"),
        ),
        (
            "overloaded",
            500,
            "InternalServerException",
            Some("MODEL_TEMPORARILY_UNAVAILABLE"),
        ),
        ("unavailable", 503, "ServiceUnavailableException", None),
    ];
    for (kind, status, exception, reason) in cases {
        inject(&sim, json!({"account": "sim-2", "fault": kind, "count": 1})).await;
        let reply = sim.chat(Dialect::Kiro, &token, &request("hi")).await;
        assert_eq!(reply.status, status, "{kind}");
        let body = reply.error_body.clone().unwrap();
        assert_eq!(
            body["__type"],
            format!("com.amazon.aws.codewhisperer#{exception}"),
            "{kind}"
        );
        assert_eq!(
            body.get("reason").and_then(Value::as_str),
            reason,
            "{kind}: {body}"
        );
        assert!(
            reply
                .header("x-amzn-errortype")
                .unwrap()
                .starts_with(exception),
            "{kind}"
        );
        // count=1: the next request is served normally.
        assert_eq!(
            sim.chat(Dialect::Kiro, &token, &request("hi")).await.status,
            200,
            "{kind}"
        );
    }
    let stats = sim.stats().await.account("sim-2");
    assert_eq!(stats.faults_fired, cases.len() as u64);
    assert_eq!(
        (stats.chat_errors, stats.chat_ok),
        (cases.len() as u64, cases.len() as u64)
    );
}

#[tokio::test]
async fn fault_bodies_classify_as_intended() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    let expected = [
        (FaultKind::Throttle, "throttled"),
        (FaultKind::MonthlyQuota, "quota_exhausted"),
        (FaultKind::Quota402, "quota_exhausted"),
        (FaultKind::Suspended, "suspended"),
        (FaultKind::ExpiredToken, "token"),
        (FaultKind::InvalidModel, "model_unavailable"),
        (FaultKind::Overloaded, "overloaded"),
        (FaultKind::Unavailable, "transient"),
    ];
    for (kind, label) in expected {
        sim.handle.inject(FaultSpec::new("sim-1", kind).times(1));
        let response = sim.send_chat(Dialect::QCli, &token, &request("hi")).await;
        let status = response.status().as_u16();
        let error_type = response.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.bytes().await.unwrap();
        let failure: UpstreamFailure = classify_http_error(status, Some(&error_type), None, &body);
        assert_eq!(
            failure.label(),
            label,
            "{kind:?}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[tokio::test]
async fn faults_hit_only_their_account_until_cleared() {
    let sim = start_default().await;
    let (one, two) = (sim.token(1).await, sim.token(2).await);
    inject(&sim, json!({"account": "sim-2", "fault": "throttle"})).await;
    for _ in 0..3 {
        assert_eq!(
            sim.chat(Dialect::Kiro, &two, &request("hi")).await.status,
            429
        );
        assert_eq!(
            sim.chat(Dialect::Kiro, &one, &request("hi")).await.status,
            200
        );
    }
    let response = sim
        .client
        .delete(sim.url("/_sim/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        sim.chat(Dialect::Kiro, &two, &request("hi")).await.status,
        200
    );

    // Without an account a fault hits everyone; the handle clears like the endpoint.
    inject(&sim, json!({"fault": "unavailable"})).await;
    assert_eq!(
        sim.chat(Dialect::Kiro, &one, &request("hi")).await.status,
        503
    );
    assert_eq!(
        sim.chat(Dialect::Kiro, &two, &request("hi")).await.status,
        503
    );
    sim.handle.clear_faults();
    assert_eq!(
        sim.chat(Dialect::Kiro, &one, &request("hi")).await.status,
        200
    );
}

#[tokio::test]
async fn probability_zero_never_fires_and_one_always_does() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    inject(
        &sim,
        json!({"account": "sim-1", "fault": "overloaded", "probability": 0.0}),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(
            sim.chat(Dialect::Kiro, &token, &request("hi")).await.status,
            200
        );
    }
    sim.handle.clear_faults();
    inject(
        &sim,
        json!({"account": "sim-1", "fault": "overloaded", "probability": 1.0}),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(
            sim.chat(Dialect::Kiro, &token, &request("hi")).await.status,
            500
        );
    }
}

#[tokio::test]
async fn bad_fault_requests_are_refused() {
    let sim = start_default().await;
    for body in [
        json!({"account": "sim-1", "fault": "gremlins"}),
        json!({"account": "sim-1", "fault": "throttle", "count": 1, "probability": 0.5}),
        json!({"account": "sim-1", "fault": "throttle", "probability": 2.0}),
        json!({"account": "sim-1", "fault": "throttle", "colour": "red"}),
    ] {
        let (status, answer) = sim.post_json("/_sim/faults", &body).await;
        assert_eq!(status, 400, "{body}");
        assert!(answer["error"].is_string());
    }
}

#[tokio::test]
async fn configured_faults_are_active_from_the_start() {
    let sim = start(SimConfig {
        faults: vec![FaultSpec::new("sim-3", FaultKind::Suspended).times(2)],
        ..SimConfig::default()
    })
    .await;
    let token = sim.token(3).await;
    let body = sim
        .chat(Dialect::Kiro, &token, &request("hi"))
        .await
        .error_body
        .unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("temporarily is suspended"),
        "{body}"
    );
    assert_eq!(
        sim.chat(Dialect::Kiro, &token, &request("hi")).await.status,
        403
    );
    assert_eq!(
        sim.chat(Dialect::Kiro, &token, &request("hi")).await.status,
        200
    );
}

#[tokio::test]
async fn midstream_exception_ends_the_stream_with_an_exception_frame() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    inject(
        &sim,
        json!({"account": "sim-1", "fault": "midstream_exception", "count": 1}),
    )
    .await;
    let reply = sim
        .chat(Dialect::QCli, &token, &request("hello there"))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text_pieces().len(), 2, "{:?}", reply.event_types());
    match reply.stream_error {
        Some(StreamError::Exception { exception_type, .. }) => {
            assert_eq!(exception_type, "InternalServerException")
        }
        other => panic!("expected an exception frame, got {other:?}"),
    }
}

#[tokio::test]
async fn midstream_reset_drops_the_connection_inside_the_body() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    inject(
        &sim,
        json!({"account": "sim-1", "fault": "midstream_reset", "count": 1}),
    )
    .await;
    let reply = sim
        .chat(Dialect::Kiro, &token, &request("hello there"))
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.transport_error, "{reply:?}");
    assert_eq!(reply.text_pieces().len(), 2);
    assert!(reply.stream_error.is_none() && reply.decode_error.is_none());
    // The simulator itself is fine afterwards.
    assert_eq!(
        sim.chat(Dialect::Kiro, &token, &request("hi")).await.status,
        200
    );
}

#[tokio::test]
async fn bad_crc_is_caught_by_the_decoder() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    inject(
        &sim,
        json!({"account": "sim-1", "fault": "bad_crc", "count": 1}),
    )
    .await;
    let reply = sim
        .chat(Dialect::Kiro, &token, &request("hello there"))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text_pieces().len(), 2);
    let error = reply.decode_error.expect("a checksum error");
    assert!(
        error.to_lowercase().contains("crc") || error.to_lowercase().contains("checksum"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_first_byte_sends_headers_then_waits() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    inject(
        &sim,
        json!({"account": "sim-1", "fault": "slow_first_byte", "count": 1, "delay_ms": 45_000}),
    )
    .await;
    let started = tokio::time::Instant::now();
    let response = sim.send_chat(Dialect::Kiro, &token, &request("hi")).await;
    assert_eq!(response.status(), 200);
    let headers_after = started.elapsed();
    let reply = read_transcript(response).await;
    assert_eq!(reply.text_pieces().len(), 20);
    // Paused clock: these are the simulator's own timers, not wall time.
    assert!(headers_after < Duration::from_secs(45), "{headers_after:?}");
    assert!(started.elapsed() >= Duration::from_secs(45));
}

#[tokio::test(start_paused = true)]
async fn slow_first_byte_defaults_to_thirty_seconds() {
    let sim = start_default().await;
    let token = sim.token(1).await;
    sim.handle
        .inject(FaultSpec::new("sim-1", FaultKind::SlowFirstByte).times(1));
    let started = tokio::time::Instant::now();
    let reply = sim.chat(Dialect::Kiro, &token, &request("hi")).await;
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert!(started.elapsed() < Duration::from_secs(45));
}

#[tokio::test]
async fn refresh_faults_hit_refreshes_of_their_account() {
    let sim = start_default().await;
    inject(
        &sim,
        json!({"account": "sim-1", "fault": "refresh_invalid_grant", "count": 1}),
    )
    .await;
    inject(
        &sim,
        json!({"account": "sim-2", "fault": "refresh_5xx", "count": 1}),
    )
    .await;
    let refresh = |i: usize| {
        let c = qgate_sim::credentials(i);
        json!({"grantType": "refresh_token", "refreshToken": c.refresh_token,
               "clientId": c.client_id, "clientSecret": c.client_secret})
    };
    let (status, body) = sim.post_json("/token", &refresh(1)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = sim.post_json("/token", &refresh(2)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("server_error"))
    );
    // Chat requests are untouched by refresh faults, and counted faults are used up.
    let token = sim.token(1).await;
    assert_eq!(
        sim.chat(Dialect::Kiro, &token, &request("hi")).await.status,
        200
    );
    sim.token(2).await;
    // Kiro refreshes are hit too.
    inject(
        &sim,
        json!({"account": "sim-3", "fault": "refresh_5xx", "count": 1}),
    )
    .await;
    let (status, _) = sim
        .post_json("/refreshToken", &json!({"refreshToken": "sim-refresh-3"}))
        .await;
    assert_eq!(status, 500);
    let stats = sim.stats().await;
    assert_eq!(stats.account("sim-1").refresh_failures, 1);
    assert_eq!(stats.account("sim-2").refresh_failures, 1);
    assert_eq!(stats.account("sim-3").faults_fired, 1);
}
