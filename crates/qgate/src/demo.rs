//! `qgate demo`: the built-in Amazon Q simulator in-process, and the gateway in front of
//! it with simulated accounts and local state — configured through the same environment
//! variables a real deployment uses, so the demo exercises the real configuration path.

use anyhow::{Context, Result};
use qgate_gateway::config::{self, EnvSource, Overrides};
use std::path::PathBuf;

pub async fn run(port: u16, accounts: usize, state_dir: PathBuf) -> Result<()> {
    let accounts = accounts.clamp(1, 100);
    let sim_listener = qgate_gateway::server::bind(([127, 0, 0, 1], 0).into())?;
    let sim = qgate_sim::start(
        qgate_sim::SimConfig {
            accounts,
            ..Default::default()
        },
        sim_listener,
    )
    .await
    .context("starting the simulator")?;
    let admin_key = format!("qgate-admin-{}", uuid_hex());
    let base = sim.base_url();
    let mut vars: Vec<(String, String)> = vec![
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), port.to_string()),
        ("AMAZONQ_API_ENDPOINT".into(), base.clone()),
        ("AMAZONQ_TOKEN_ENDPOINT".into(), format!("{base}/token")),
        ("KIRO_AUTH_ENDPOINT".into(), format!("{base}/refreshToken")),
        ("TOKEN_CACHE_DIR".into(), state_dir.display().to_string()),
        ("ADMIN_API_KEY".into(), admin_key.clone()),
        ("AMAZONQ_ACCOUNT_COUNT".into(), accounts.to_string()),
    ];
    for i in 1..=accounts {
        let c = qgate_sim::credentials(i);
        let p = format!("AMAZONQ_ACCOUNT_{i}_");
        vars.push((format!("{p}ID"), c.account));
        vars.push((format!("{p}REFRESH_TOKEN"), c.refresh_token));
        vars.push((format!("{p}CLIENT_ID"), c.client_id));
        vars.push((format!("{p}CLIENT_SECRET"), c.client_secret));
        vars.push((format!("{p}PROFILE_ARN"), c.profile_arn));
    }
    // Pass through tuning variables the user set (strategy, breaker, ...), never accounts.
    for (k, v) in std::env::vars() {
        let ours = vars.iter().any(|(name, _)| *name == k);
        if !ours && !k.starts_with("AMAZONQ_") && !matches!(k.as_str(), "API_KEYS") {
            vars.push((k, v));
        }
    }
    let cfg = config::load(&EnvSource::from_pairs(vars), &Overrides::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = qgate_gateway::server::bind(([127, 0, 0, 1], port).into())
        .with_context(|| format!("binding 127.0.0.1:{port} (try --port)"))?;
    let addr = listener.local_addr()?;
    let gateway = qgate_gateway::start(cfg, listener)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print_banner(addr, &base, accounts, &admin_key, &state_dir);
    crate::wait_for_signal().await;
    gateway.shutdown().await;
    sim.shutdown().await;
    Ok(())
}

/// 122 random bits from a v4 UUID: plenty for a demo admin key.
fn uuid_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn print_banner(
    addr: std::net::SocketAddr,
    sim: &str,
    accounts: usize,
    admin_key: &str,
    state_dir: &std::path::Path,
) {
    let url = format!("http://{addr}");
    println!(
        r#"
qgate demo is running
  gateway    {url}   ({accounts} simulated Amazon Q accounts)
  simulator  {sim}
  state      {state}
  admin key  {admin_key}

Call it with curl:
  curl -s {url}/v1/messages -H 'content-type: application/json' \
    -d '{{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{{"role":"user","content":"Hello there"}}]}}'
  curl -sN {url}/v1/messages -H 'content-type: application/json' \
    -d '{{"model":"claude-sonnet-4-5","max_tokens":256,"stream":true,"messages":[{{"role":"user","content":"Hello there"}}]}}'

Or with Claude Code (offline):
  ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY=demo DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 \
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 claude -p "say hi"

Operate the pool:
  curl -s {url}/accounts/stats -H 'authorization: Bearer {admin_key}'
  curl -s {url}/metrics

Press Ctrl-C to stop."#,
        state = state_dir.display()
    );
}
