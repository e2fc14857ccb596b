//! Test harness: a simulator and a gateway wired together, plus HTTP and SSE helpers that
//! make the tests read like specs.

#![allow(dead_code)]

use qgate_gateway::GatewayHandle;
use qgate_gateway::config::{self, EnvSource, Overrides};
use qgate_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};
use std::time::Duration;

/// A running simulator + gateway pair.
pub struct TestEnv {
    pub sim: SimHandle,
    pub gw: Option<GatewayHandle>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub base: String,
    pub extra_env: Vec<(String, String)>,
    pub accounts: usize,
    /// Accounts configured through env vars (0 when the TOML file has `[[accounts]]`).
    pub env_accounts: usize,
}

/// Knobs for [`TestEnv::start`].
#[derive(Default, Clone)]
pub struct Opts {
    pub accounts: usize,
    pub sim: Option<SimConfig>,
    pub env: Vec<(&'static str, String)>,
    /// Extra TOML config (written to a file passed as `QGATE_CONFIG`).
    pub toml: Option<String>,
}

impl Opts {
    pub fn accounts(n: usize) -> Self {
        Opts {
            accounts: n,
            ..Default::default()
        }
    }

    pub fn env(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.env.push((k, v.into()));
        self
    }

    pub fn sim(mut self, s: SimConfig) -> Self {
        self.sim = Some(s);
        self
    }

    /// Extra TOML configuration; `{SIM}` is replaced with the simulator's base URL.
    pub fn toml(mut self, t: impl Into<String>) -> Self {
        self.toml = Some(t.into());
        self
    }
}

fn gateway_env(
    sim: &SimHandle,
    dir: &std::path::Path,
    accounts: usize,
    extra: &[(String, String)],
) -> EnvSource {
    let base = sim.base_url();
    let mut vars: Vec<(String, String)> = vec![
        ("AMAZONQ_API_ENDPOINT".into(), base.clone()),
        ("AMAZONQ_TOKEN_ENDPOINT".into(), format!("{base}/token")),
        ("KIRO_AUTH_ENDPOINT".into(), format!("{base}/refreshToken")),
        ("TOKEN_CACHE_DIR".into(), dir.display().to_string()),
        ("UPSTREAM_FIRST_EVENT_TIMEOUT".into(), "5s".into()),
        ("UPSTREAM_IDLE_TIMEOUT".into(), "5s".into()),
        ("AMAZONQ_ACCOUNT_COUNT".into(), accounts.to_string()),
    ];
    for i in 1..=accounts {
        let c = qgate_sim::credentials(i);
        let p = format!("AMAZONQ_ACCOUNT_{i}_");
        vars.push((format!("{p}ID"), c.account));
        vars.push((format!("{p}REFRESH_TOKEN"), c.refresh_token));
        vars.push((format!("{p}CLIENT_ID"), c.client_id));
        vars.push((format!("{p}CLIENT_SECRET"), c.client_secret));
    }
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k.clone(), v.clone()));
    }
    EnvSource::from_pairs(vars)
}

impl TestEnv {
    pub async fn start(opts: Opts) -> TestEnv {
        qgate_gateway::init_tls();
        let accounts = opts.accounts.max(1);
        let sim_cfg = opts.sim.clone().unwrap_or_else(|| SimConfig {
            accounts,
            ..Default::default()
        });
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = qgate_sim::start(sim_cfg, sim_listener).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut extra: Vec<(String, String)> = opts
            .env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if let Some(t) = &opts.toml {
            let path = dir.path().join("qgate-test.toml");
            std::fs::write(&path, t.replace("{SIM}", &sim.base_url())).unwrap();
            extra.push(("QGATE_CONFIG".into(), path.display().to_string()));
        }
        let mut env = TestEnv {
            sim,
            gw: None,
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: String::new(),
            extra_env: extra,
            accounts,
            env_accounts: if opts
                .toml
                .as_deref()
                .is_some_and(|t| t.contains("[[accounts]]"))
            {
                0
            } else {
                accounts
            },
        };
        env.start_gateway().await;
        env
    }

    /// (Re)starts the gateway with the same state directory.
    pub async fn start_gateway(&mut self) {
        let env = gateway_env(
            &self.sim,
            self.dir.path(),
            self.env_accounts,
            &self.extra_env,
        );
        let cfg = config::load(&env, &Overrides::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = qgate_gateway::start(cfg, listener).await.unwrap();
        self.base = format!("http://{}", gw.addr());
        self.gw = Some(gw);
    }

    pub async fn stop_gateway(&mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        post_json(&self.http, &self.url(path), body).await
    }

    /// Non-streaming message: status and JSON body.
    pub async fn message(&self, body: &Value) -> (u16, Value) {
        let r = self.post("/v1/messages", body).await;
        let status = r.status().as_u16();
        let v = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }

    /// Sends `body` as a streamed message; the response once its head has arrived.
    pub async fn post_stream(&self, body: &Value) -> reqwest::Response {
        let mut body = body.clone();
        body["stream"] = json!(true);
        self.post("/v1/messages", &body).await
    }

    /// Streaming message: status and the parsed SSE events (name, data).
    pub async fn stream(&self, body: &Value) -> (u16, Vec<(String, Value)>) {
        let r = self.post_stream(body).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if status != 200 {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return (status, vec![("http_error".into(), v)]);
        }
        (status, parse_sse(&text))
    }

    pub async fn sim_stats(&self) -> Value {
        self.http
            .get(format!("{}/_sim/stats", self.sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Injects a fault through the simulator's HTTP control API.
    pub async fn fault(&self, spec: Value) {
        let r = self
            .http
            .post(format!("{}/_sim/faults", self.sim.base_url()))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "fault injection refused: {spec}");
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

/// `event: X\ndata: {...}\n\n` → [(X, json)]; every event must have both lines.
/// POSTs `body` as JSON to `url` with the test API key, through `http`.
pub async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    http.post(url)
        .header("x-api-key", "test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

pub fn parse_sse(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        if block.trim().is_empty() {
            continue;
        }
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str::<Value>(d).expect("data is JSON"));
            }
        }
        let name = name.expect("every SSE event has an event: line");
        let data = data.expect("every SSE event has a data: line");
        assert_eq!(
            data["type"],
            json!(name),
            "data.type repeats the event name"
        );
        out.push((name, data));
    }
    out
}

/// The text of a streamed reply.
pub fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["delta"]["type"] == "text_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A minimal valid request.
pub fn hello(text: &str) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": text}]
    })
}

/// The per-account counter from `/_sim/stats`.
pub fn count(stats: &Value, account: &str, field: &str) -> u64 {
    stats["accounts"][account][field].as_u64().unwrap_or(0)
}

/// The encryption key every instance of a [`TestCluster`] shares.
pub const CLUSTER_KEY_HEX: &str =
    "5f2a7c0e9b1d3f4a6c8e0b2d4f6a8c0e1b3d5f7a9c0e2b4d6f8a0c2e4b6d8f01";

/// Several gateways sharing one Redis (a private `redis-server` on a unix socket) in front
/// of one simulator. Each gateway has its own token cache directory, as on separate hosts.
pub struct TestCluster {
    pub redis: qgate_store::redis::test_server::RedisServer,
    pub sim: SimHandle,
    pub nodes: Vec<Node>,
    pub http: reqwest::Client,
    opts: Opts,
}

/// One gateway of a [`TestCluster`].
pub struct Node {
    pub gw: Option<GatewayHandle>,
    pub dir: tempfile::TempDir,
    pub base: String,
}

impl TestCluster {
    /// `n` gateways with `opts` (accounts, simulator, env, TOML) plus `REDIS_URL` and
    /// `QGATE_ENCRYPTION_KEY` (unless `opts.env` overrides them).
    pub async fn start(n: usize, opts: Opts) -> TestCluster {
        qgate_gateway::init_tls();
        let redis = qgate_store::redis::test_server::RedisServer::start();
        let accounts = opts.accounts.max(1);
        let sim_cfg = opts.sim.clone().unwrap_or_else(|| SimConfig {
            accounts,
            ..Default::default()
        });
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = qgate_sim::start(sim_cfg, sim_listener).await.unwrap();
        let mut cluster = TestCluster {
            redis,
            sim,
            nodes: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            opts,
        };
        for _ in 0..n {
            let node = Node {
                gw: None,
                dir: tempfile::tempdir().unwrap(),
                base: String::new(),
            };
            cluster.nodes.push(node);
            let i = cluster.nodes.len() - 1;
            cluster.start_node(i).await;
        }
        cluster
    }

    /// (Re)starts gateway `i` with its state directory.
    pub async fn start_node(&mut self, i: usize) {
        self.start_node_with(i, &[]).await;
    }

    /// Another gateway on the same simulator (and Redis), with `env` over the cluster's
    /// settings (`("REDIS_URL", "")` makes it a single, local-mode instance). Its index.
    pub async fn add_node(&mut self, env: &[(&str, &str)]) -> usize {
        self.nodes.push(Node {
            gw: None,
            dir: tempfile::tempdir().unwrap(),
            base: String::new(),
        });
        let i = self.nodes.len() - 1;
        self.start_node_with(i, env).await;
        i
    }

    async fn start_node_with(&mut self, i: usize, env: &[(&str, &str)]) {
        let dir = self.nodes[i].dir.path().to_path_buf();
        let mut extra: Vec<(String, String)> = vec![
            ("REDIS_URL".into(), self.redis.url()),
            ("QGATE_ENCRYPTION_KEY".into(), CLUSTER_KEY_HEX.into()),
        ];
        extra.extend(
            self.opts
                .env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone())),
        );
        extra.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut env_accounts = self.opts.accounts.max(1);
        if let Some(t) = &self.opts.toml {
            let path = dir.join("qgate-test.toml");
            std::fs::write(&path, t.replace("{SIM}", &self.sim.base_url())).unwrap();
            extra.push(("QGATE_CONFIG".into(), path.display().to_string()));
            if t.contains("[[accounts]]") {
                env_accounts = 0;
            }
        }
        let env = gateway_env(&self.sim, &dir, env_accounts, &extra);
        let cfg = config::load(&env, &Overrides::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = qgate_gateway::start(cfg, listener).await.unwrap();
        self.nodes[i].base = format!("http://{}", gw.addr());
        self.nodes[i].gw = Some(gw);
    }

    pub async fn stop_node(&mut self, i: usize) {
        if let Some(gw) = self.nodes[i].gw.take() {
            gw.shutdown().await;
        }
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("{}{}", self.nodes[i].base, path)
    }

    /// Non-streaming message through gateway `i`: status and JSON body.
    pub async fn message(&self, i: usize, body: &Value) -> (u16, Value) {
        let r = post_json(&self.http, &self.url(i, "/v1/messages"), body).await;
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, i: usize, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(i, path)).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// An admin call (`POST`/`PATCH`/`DELETE`) with the admin key `admin`.
    pub async fn admin(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(i, path))
            .header("authorization", "Bearer admin-key-for-tests");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn metrics(&self, i: usize) -> String {
        self.http
            .get(self.url(i, "/metrics"))
            .header("authorization", "Bearer admin-key-for-tests")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn sim_stats(&self) -> Value {
        self.http
            .get(format!("{}/_sim/stats", self.sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn fault(&self, spec: Value) {
        let r = self
            .http
            .post(format!("{}/_sim/faults", self.sim.base_url()))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "fault injection refused: {spec}");
    }
}

/// Poll `check` every 20 ms for at most `limit`; returns the last result. The bound keeps
/// a broken build from hanging; nothing asserts how long it took.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stream rules real Anthropic SDKs rely on: the translator's own property-test
/// validator, included rather than copied so the two cannot drift.
#[path = "../../../qgate-translate/tests/response_stream/validator.rs"]
pub mod stream_rules;

/// Checks a streamed reply as a client sees it: every SSE event has an `event:` and a
/// `data:` line, the data parses as the event its name says, and the sequence is a valid
/// Anthropic stream (complete, or ended by one `error` event). What it said, or why not.
pub fn check_sse(text: &str) -> Result<stream_rules::Summary, String> {
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n);
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = Some(d);
            } else {
                return Err(format!("unexpected SSE line {line:?}"));
            }
        }
        let (Some(name), Some(data)) = (name, data) else {
            return Err(format!("an SSE event without both lines: {block:?}"));
        };
        let event: qgate_anthropic::StreamEvent =
            serde_json::from_str(data).map_err(|e| format!("{name}: {e}: {data}"))?;
        if event.name() != name {
            return Err(format!("event: {name} carries a {} payload", event.name()));
        }
        events.push(event);
    }
    // Thinking may or may not have been asked for; the rules hold either way.
    stream_rules::validate(&events, true)
}

/// Checks a non-streaming reply: a whole message (known stop reason, blocks well formed,
/// tool inputs objects) or an Anthropic error of the status's kind.
pub fn check_reply(status: u16, body: &Value) -> Result<(), String> {
    if status != 200 {
        let kind = body["error"]["type"].as_str().unwrap_or_default();
        let ok = body["type"] == "error"
            && !kind.is_empty()
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty());
        return if ok {
            Ok(())
        } else {
            Err(format!("{status}: not an Anthropic error: {body}"))
        };
    }
    let message: qgate_anthropic::MessageResponse =
        serde_json::from_value(body.clone()).map_err(|e| format!("not a message: {e}: {body}"))?;
    if message.stop_reason.is_none() {
        return Err(format!("a message without a stop reason: {body}"));
    }
    for block in &message.content {
        if let qgate_anthropic::ResponseBlock::ToolUse { input, .. } = block
            && !input.is_object()
        {
            return Err(format!("tool input is not an object: {body}"));
        }
    }
    Ok(())
}
