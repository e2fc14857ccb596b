//! The real `qgate` binary as a child process, for tests that must `kill -9` it or read
//! everything it logs.
//!
//! `CARGO_BIN_EXE_qgate` exists only in the `qgate` crate's own tests, and that crate has
//! none of the test dependencies (HTTP client, JSON, temp dirs, simulator) these tests
//! need. So the binary is built here with `cargo build -p qgate --message-format=json`
//! and its path read from cargo's own answer: correct whatever the target directory or
//! profile, never stale (cargo rebuilds what changed), and a no-op when it is fresh.
//! `QGATE_BIN` points at a prebuilt binary instead (`scripts/test.sh` sets it: the nested
//! build resolves features without the dev-dependencies', so it would compile a second
//! tree from tokio up).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `qgate` binary, built once per test process.
pub fn qgate_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("QGATE_BIN") {
            return PathBuf::from(path);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build
            .args([
                "build",
                "-p",
                "qgate",
                "--bin",
                "qgate",
                "--message-format=json",
            ])
            .current_dir(&workspace)
            .stderr(Stdio::inherit());
        // Cargo sets these for the test process; build scripts (ring's) watch some of
        // them, so passing them on would make this build, and the next `cargo test`,
        // rebuild half the tree.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let per_package = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix));
            if per_package
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*name)
            {
                build.env_remove(&*name);
            }
        }
        let out = build.output().expect("running cargo build -p qgate");
        assert!(out.status.success(), "cargo build -p qgate failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "qgate")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the qgate executable")
    })
}

/// A running `qgate serve` child process.
pub struct Gateway {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Every line it wrote to stdout and stderr so far.
    pub output: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Gateway {
    /// Starts `qgate serve` in `workdir` with exactly `env` (plus `PATH`), on a free port,
    /// JSON logs, and waits until it listens. `None` if it exits first.
    pub async fn start(workdir: &Path, env: &[(String, String)]) -> Option<Gateway> {
        let mut cmd = Command::new(qgate_binary());
        cmd.arg("serve")
            .current_dir(workdir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning qgate");
        let output = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let mut addr_tx = Some(addr_tx);
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = output.clone();
        tokio::spawn(async move {
            let mut stderr = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = stderr.next_line().await {
                if let Some(addr) = listening_addr(&line)
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(addr);
                }
                lines.lock().push(line);
            }
        });
        let lines = output.clone();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                lines.lock().push(line);
            }
        });
        match tokio::time::timeout(Duration::from_secs(60), addr_rx).await {
            Ok(Ok(addr)) => Some(Gateway {
                child,
                base: format!("http://{addr}"),
                output,
            }),
            _ => {
                let _ = child.kill().await;
                None
            }
        }
    }

    /// `kill -9`: no drain, no final save, no destructors.
    pub async fn kill_hard(&mut self) {
        self.child.start_kill().expect("sending SIGKILL");
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then waits (bounded) for the graceful exit.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            self.kill_hard().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// The address from the `qgate listening` line, JSON or plain text (`addr=...`).
fn listening_addr(line: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<Value>(line) {
        return (v["message"] == "qgate listening")
            .then(|| v["addr"].as_str().map(str::to_owned))
            .flatten();
    }
    let (_, rest) = line.split_once("qgate listening addr=")?;
    rest.split_whitespace().next().map(str::to_owned)
}
