//! The official Anthropic SDKs against the real gateway: `tests/clients/py_conformance.py`
//! (Python `anthropic`) and `tests/clients/ts_conformance.mjs` (`@anthropic-ai/sdk`) run as
//! subprocesses, each against its own set of gateways, and must report no failure.
//!
//! The interpreters come from `QGATE_PYTHON` and `QGATE_NODE_CLIENTS`, which
//! `scripts/test.sh` exports after installing the pinned SDKs. A missing variable fails the
//! test: a conformance suite that silently passes without running proves nothing.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The one client key every gateway of the suite accepts.
const CLIENT_KEY: &str = "qgate-conformance-key";
/// Small enough that a 20 000-character prompt is over it, large enough for the headers.
const SMALL_BODY_LIMIT: usize = 4096;
/// The suites take ~35 s (one retry-after wait); this only stops a hung child.
const SUITE_DEADLINE: Duration = Duration::from_secs(240);

/// One gateway per behaviour that changes a gateway's state or needs its own config, so
/// no check can disturb another (a throttled account stays cooled down, for instance).
struct ClientGateways {
    main: TestEnv,
    throttle: TestEnv,
    overload: TestEnv,
    midstream: TestEnv,
    small_body: TestEnv,
}

impl ClientGateways {
    async fn start() -> ClientGateways {
        let keyed = |accounts| Opts::accounts(accounts).env("API_KEYS", CLIENT_KEY);
        ClientGateways {
            main: TestEnv::start(keyed(3)).await,
            throttle: TestEnv::start(keyed(1)).await,
            overload: TestEnv::start(keyed(1)).await,
            midstream: TestEnv::start(keyed(1)).await,
            small_body: TestEnv::start(
                keyed(1).env("MAX_BODY_BYTES", SMALL_BODY_LIMIT.to_string()),
            )
            .await,
        }
    }

    fn suite_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("QGATE_BASE_URL", self.main.base.clone()),
            ("QGATE_API_KEY", CLIENT_KEY.to_owned()),
            ("QGATE_THROTTLE_URL", self.throttle.base.clone()),
            ("QGATE_OVERLOAD_URL", self.overload.base.clone()),
            ("QGATE_MIDSTREAM_URL", self.midstream.base.clone()),
            ("QGATE_SMALL_BODY_URL", self.small_body.base.clone()),
            ("QGATE_STRICT", "1".to_owned()),
        ]
    }
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients")
}

fn required_var(name: &str, what: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set: it must point at {what}. Run ./scripts/test.sh, which \
             installs the official SDKs from tests/clients and exports {name}."
        ),
    }
}

/// Runs one suite against fresh gateways; panics with the suite's whole output unless it
/// exits 0 and reports no failure.
async fn run_suite(program: &str, script: &Path, cwd: &Path) {
    let gateways = ClientGateways::start().await;
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg(script)
        .current_dir(cwd)
        .envs(gateways.suite_env())
        // The SDKs read these; a developer's own settings must not redirect the suite.
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .env_remove("ANTHROPIC_BASE_URL")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SUITE_DEADLINE, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish in {SUITE_DEADLINE:?}", script.display()))
        .unwrap_or_else(|e| panic!("cannot run {program} {}: {e}", script.display()));
    let transcript = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{} failed ({}):\n{transcript}",
        script.display(),
        output.status
    );
    let summary = String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .map(str::to_owned);
    let summary = summary.unwrap_or_else(|| panic!("no summary line:\n{transcript}"));
    assert!(
        summary.ends_with(" passed, 0 failed") && !summary.starts_with("0 passed"),
        "{summary}\n{transcript}"
    );
    // Shown with --nocapture; the counts are part of the report.
    println!("{}: {summary}", script.display());
}

#[tokio::test]
async fn python_sdk_conforms() {
    let python = required_var(
        "QGATE_PYTHON",
        "a python with the `anthropic` SDK installed",
    );
    let dir = clients_dir();
    run_suite(&python, &dir.join("py_conformance.py"), &dir).await;
}

#[tokio::test]
async fn typescript_sdk_conforms() {
    let dir = PathBuf::from(required_var(
        "QGATE_NODE_CLIENTS",
        "tests/clients with node_modules installed (npm install)",
    ));
    // Node resolves the SDK from the script's own directory, so run the copy in `dir`.
    run_suite("node", &dir.join("ts_conformance.mjs"), &dir).await;
}
