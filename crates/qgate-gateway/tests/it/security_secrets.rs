//! No secret in any log line, metric, admin response, error body or response header, with
//! the real binary logging at `trace`: extends the in-process `logs` scenario with
//! refresh-token rotation (every rotated token and every access token the token service
//! issued, read from the recording proxy, not guessed by prefix), a Kiro-auth account, a
//! refused refresh, upstream faults mid-stream, an account added and removed with its
//! credentials, hostile requests, a graceful shutdown, and `qgate check-config`.

use crate::crash_process::{Gateway, qgate_binary};
use crate::crash_proxy::RecordingProxy;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const CLIENT_KEY: &str = "sk-client-9f8e7d6c5b4a";
const ADMIN: &str = "adm-5e4d3c2b1a09";

/// Every response of the scenario, as text: status line, headers, body.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    async fn call(
        &mut self,
        http: &reqwest::Client,
        method: Method,
        url: String,
        key: Option<&str>,
        body: Option<Value>,
    ) -> u16 {
        let mut r = http.request(method, &url);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let Ok(r) = r.send().await else {
            return 0;
        };
        let status = r.status().as_u16();
        let headers = format!("{:?}", r.headers());
        let text = r.text().await.unwrap_or_default();
        self.0.push(format!("{url} {status}\n{headers}\n{text}"));
        status
    }
}

fn config_file(dir: &std::path::Path, proxy: &str) -> std::path::PathBuf {
    let mut toml = String::from("[pool]\nstrategy = \"round_robin\"\n");
    for i in 1..=2 {
        let c = qgate_sim::credentials(i);
        toml.push_str(&format!(
            "\n[[accounts]]\nid = \"{}\"\nrefresh_token = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n",
            c.account, c.refresh_token, c.client_id, c.client_secret
        ));
    }
    let kiro = qgate_sim::credentials(3);
    toml.push_str(&format!(
        "\n[[accounts]]\nid = \"{}\"\ndialect = \"kiro\"\nauth = \"kiro_social\"\nrefresh_token = \"{}\"\nprofile_arn = \"{}\"\napi_endpoint = \"{proxy}\"\n",
        kiro.account, kiro.refresh_token, kiro.profile_arn
    ));
    let path = dir.join("qgate.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output_of_the_real_binary() {
    qgate_gateway::init_tls();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = qgate_sim::start(
        qgate_sim::SimConfig {
            accounts: 4,
            rotate_refresh_tokens: true,
            ..Default::default()
        },
        listener,
    )
    .await
    .unwrap();
    let proxy = RecordingProxy::start(sim.base_url()).await;
    let dir = tempfile::tempdir().unwrap();
    let p = proxy.base.clone();
    let env: Vec<(String, String)> = [
        (
            "QGATE_CONFIG",
            config_file(dir.path(), &p).display().to_string(),
        ),
        ("AMAZONQ_API_ENDPOINT", p.clone()),
        ("AMAZONQ_TOKEN_ENDPOINT", format!("{p}/token")),
        ("KIRO_AUTH_ENDPOINT", format!("{p}/refreshToken")),
        (
            "TOKEN_CACHE_DIR",
            dir.path().join("cache").display().to_string(),
        ),
        ("API_KEYS", CLIENT_KEY.to_owned()),
        ("ADMIN_API_KEY", ADMIN.to_owned()),
        ("UPSTREAM_FIRST_EVENT_TIMEOUT", "5s".to_owned()),
        ("RUST_LOG", "trace".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let gw = Gateway::start(dir.path(), &env)
        .await
        .unwrap_or_else(|| panic!("the gateway did not start"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut seen = Transcript::default();
    let messages = gw.url("/v1/messages");
    let hello = |text: &str, stream: bool| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 32, "stream": stream,
            "messages": [{"role": "user", "content": text}]})
    };

    // Traffic over every account, streaming and not, before and after expiry.
    for round in 0..2 {
        for n in 0..3 {
            let body = hello(
                &format!("round {round} request {n} [[sim words=4]]"),
                n % 2 == 0,
            );
            assert_eq!(
                seen.call(
                    &http,
                    Method::POST,
                    messages.clone(),
                    Some(CLIENT_KEY),
                    Some(body)
                )
                .await,
                200
            );
        }
        sim.expire_access_tokens();
    }
    // Wrong and missing keys, malformed bodies.
    seen.call(
        &http,
        Method::POST,
        messages.clone(),
        Some("sk-client-wrong"),
        Some(hello("x", false)),
    )
    .await;
    seen.call(
        &http,
        Method::POST,
        messages.clone(),
        None,
        Some(hello("x", false)),
    )
    .await;
    seen.call(
        &http,
        Method::POST,
        messages.clone(),
        Some(CLIENT_KEY),
        Some(json!({"model": 5})),
    )
    .await;
    seen.call(
        &http,
        Method::GET,
        gw.url("/accounts"),
        Some(CLIENT_KEY),
        None,
    )
    .await;
    seen.call(
        &http,
        Method::GET,
        gw.url("/accounts"),
        Some("adm-wrong"),
        None,
    )
    .await;
    // Upstream faults: failover, a mid-stream exception, a refused refresh.
    for fault in [
        json!({"account": "sim-1", "fault": "throttle", "count": 1}),
        json!({"account": "sim-2", "fault": "expired_token", "count": 1}),
        json!({"fault": "midstream_exception", "count": 1}),
    ] {
        let injected = http
            .post(format!("{}/_sim/faults", sim.base_url()))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert!(injected.status().is_success(), "{fault}");
        seen.call(
            &http,
            Method::POST,
            messages.clone(),
            Some(CLIENT_KEY),
            Some(hello("faulty [[sim words=6]]", true)),
        )
        .await;
    }
    sim.inject(
        qgate_sim::FaultSpec::new("sim-2", qgate_sim::FaultKind::RefreshInvalidGrant).times(1),
    );
    let status = seen
        .call(
            &http,
            Method::POST,
            gw.url("/accounts/sim-2/refresh"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 502, "the refused refresh is reported");
    seen.call(
        &http,
        Method::POST,
        gw.url("/accounts/sim-2/refresh"),
        Some(ADMIN),
        None,
    )
    .await;
    // Admin reads and an account added (with credentials), patched, probed and removed.
    let c = qgate_sim::credentials(4);
    let added = json!({"id": c.account, "refresh_token": c.refresh_token,
        "client_id": c.client_id, "client_secret": c.client_secret});
    assert_eq!(
        seen.call(
            &http,
            Method::POST,
            gw.url("/accounts"),
            Some(ADMIN),
            Some(added)
        )
        .await,
        201
    );
    seen.call(
        &http,
        Method::PATCH,
        gw.url("/accounts/sim-4"),
        Some(ADMIN),
        Some(json!({"weight": 3})),
    )
    .await;
    seen.call(
        &http,
        Method::POST,
        gw.url("/accounts/sim-4/refresh"),
        Some(ADMIN),
        None,
    )
    .await;
    seen.call(
        &http,
        Method::POST,
        gw.url("/accounts/sim-4/probe"),
        Some(ADMIN),
        None,
    )
    .await;
    for path in [
        "/accounts",
        "/accounts/stats",
        "/accounts/sim-1",
        "/accounts/sim-3",
        "/accounts/sim-4",
        "/admin/keys",
        "/admin/openapi.json",
        "/metrics",
        "/health",
        "/v1/models",
    ] {
        let key = if path == "/v1/models" {
            CLIENT_KEY
        } else {
            ADMIN
        };
        seen.call(&http, Method::GET, gw.url(path), Some(key), None)
            .await;
    }
    seen.call(
        &http,
        Method::POST,
        gw.url("/admin/reload"),
        Some(ADMIN),
        None,
    )
    .await;
    seen.call(
        &http,
        Method::DELETE,
        gw.url("/accounts/sim-4"),
        Some(ADMIN),
        None,
    )
    .await;
    let logs_before_stop = gw.output.clone();
    gw.stop().await;
    let logs = logs_before_stop.lock().join("\n");

    // `check-config` with the same environment, valid and not.
    let mut outputs = Vec::new();
    for extra in [None, Some(("LOAD_BALANCE_STRATEGY", "fastest_please"))] {
        let mut cmd = std::process::Command::new(qgate_binary());
        cmd.arg("check-config").current_dir(dir.path()).env_clear();
        for (k, v) in &env {
            cmd.env(k, v);
        }
        if let Some((k, v)) = extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        outputs.push(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    let issued = proxy.seen.lock().issued_secrets();
    assert!(
        issued.iter().any(|t| t.contains("-r")),
        "refresh tokens were rotated: {issued:?}"
    );
    assert!(issued.len() >= 10, "{issued:?}");
    let mut secrets: Vec<String> = vec![CLIENT_KEY.to_owned(), ADMIN.to_owned()];
    secrets.extend(issued);
    for i in 1..=4 {
        let c = qgate_sim::credentials(i);
        secrets.extend([c.refresh_token, c.client_secret]);
    }
    assert!(
        // (a sanity check that the run logged at `trace`; the count depends on how
        // chatty the libraries are at that level)
        logs.lines().count() > 100,
        "trace logging is on: {} lines",
        logs.lines().count()
    );
    for secret in &secrets {
        if let Some(line) = logs.lines().find(|l| l.contains(secret.as_str())) {
            panic!("{secret} is in a log line: {line}");
        }
        for response in &seen.0 {
            assert!(
                !response.contains(secret.as_str()),
                "{secret} is in a response: {response}"
            );
        }
        for output in &outputs {
            assert!(
                !output.contains(secret.as_str()),
                "{secret} is in check-config output: {output}"
            );
        }
    }
}
