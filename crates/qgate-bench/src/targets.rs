//! The processes under test, each its own child process so `/proc` tells its CPU and
//! memory apart: the simulator (`qgate sim`), qgate (`qgate serve` configured by the
//! seed's environment variables, as in `qgate demo`), and nginx (see [`nginx`]).
//!
//! Children are stopped with SIGTERM when the harness is done, and killed if the harness
//! itself dies (`kill_on_drop`).

pub mod nginx;

use crate::client::Connection;
use anyhow::{Context, Result, anyhow, bail};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a child may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running child process.
#[derive(Debug)]
pub struct Process {
    name: &'static str,
    child: Child,
    pid: u32,
}

impl Process {
    fn spawn(name: &'static str, mut command: Command) -> Result<Process> {
        command.kill_on_drop(true).stdin(Stdio::null());
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id().ok_or_else(|| anyhow!("{name} exited at once"))?;
        Ok(Process { name, child, pid })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGTERM, then SIGKILL if it has not exited within a few seconds.
    pub async fn stop(mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let waited = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if waited.is_err() {
            eprintln!(
                "qgate-bench: {} did not stop on SIGTERM; killing it",
                self.name
            );
            let _ = self.child.kill().await;
        }
    }

    /// Fails if the child has already exited.
    fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("{} exited during start-up ({status})", self.name),
            None => Ok(()),
        }
    }
}

/// The simulator process.
#[derive(Debug)]
pub struct Sim {
    pub process: Process,
    pub addr: SocketAddr,
}

/// `qgate sim --port 0` (or `qgate-bench sim`, which takes the same arguments), reading
/// the bound address from its first line of output.
pub async fn spawn_sim(program: &Path, accounts: usize, dir: &Path) -> Result<Sim> {
    let mut command = Command::new(program);
    command
        .args(["sim", "--port", "0", "--accounts", &accounts.to_string()])
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log_file(dir, "sim.log")?);
    let mut process = Process::spawn("the simulator", command)?;
    let stdout = process
        .child
        .stdout
        .take()
        .context("the simulator's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
        .await
        .context("the simulator did not report its address in time")??
        .context("the simulator exited before reporting its address")?;
    // "Amazon Q simulator on http://127.0.0.1:PORT with N account(s)"
    let addr = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("http://"))
        .and_then(|addr| addr.parse().ok())
        .with_context(|| format!("no address in the simulator's line {line:?}"))?;
    process.check_alive()?;
    Ok(Sim { process, addr })
}

/// A relay in front of the simulator (nginx or qgate).
#[derive(Debug)]
pub struct Relay {
    pub process: Process,
    pub addr: SocketAddr,
    /// nginx's workers are children of the process we started.
    pub count_children: bool,
}

impl Relay {
    /// Every process whose CPU and memory count for this relay.
    pub fn pids(&self) -> Vec<u32> {
        if self.count_children {
            crate::proc_stats::with_children(self.process.pid())
        } else {
            vec![self.process.pid()]
        }
    }
}

/// `qgate serve` pointed at the simulator with `accounts` simulated accounts, through the
/// same environment variables a deployment uses (see `qgate demo`).
/// Environment variables handed to `qgate serve` when the harness has them.
const PASS_THROUGH: &[&str] = &[
    "REDIS_URL",
    "REDIS_PREFIX",
    "REDIS_TIMEOUT",
    "QGATE_ENCRYPTION_KEY",
    "RUST_LOG",
    "LOAD_BALANCE_STRATEGY",
    "STICKY_SESSIONS",
    // Threading, runtime and allocator tuning, for experiments.
    "WORKERS",
    "TOKIO_WORKER_THREADS",
    "GLIBC_TUNABLES",
    "MIMALLOC_PURGE_DELAY",
    "MIMALLOC_ARENA_EAGER_COMMIT",
];

pub async fn spawn_qgate(
    qgate: &Path,
    sim: SocketAddr,
    accounts: usize,
    dir: &Path,
) -> Result<Relay> {
    let port = free_port()?;
    let cache = dir.join("token-cache");
    let base = format!("http://{sim}");
    let mut command = Command::new(qgate);
    command
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("AMAZONQ_API_ENDPOINT", &base)
        .env("AMAZONQ_TOKEN_ENDPOINT", format!("{base}/token"))
        .env("KIRO_AUTH_ENDPOINT", format!("{base}/refreshToken"))
        .env("TOKEN_CACHE_DIR", &cache)
        .env("AMAZONQ_ACCOUNT_COUNT", accounts.to_string())
        .stdout(Stdio::null())
        .stderr(log_file(dir, "qgate.log")?);
    // Settings a run may vary (e.g. Redis mode), passed through from the harness's own
    // environment; everything else is fixed above so runs are comparable.
    for var in PASS_THROUGH {
        if let Ok(v) = std::env::var(var) {
            command.env(var, v);
        }
    }
    for i in 1..=accounts {
        let c = qgate_sim::credentials(i);
        let p = format!("AMAZONQ_ACCOUNT_{i}_");
        command
            .env(format!("{p}ID"), c.account)
            .env(format!("{p}REFRESH_TOKEN"), c.refresh_token)
            .env(format!("{p}CLIENT_ID"), c.client_id)
            .env(format!("{p}CLIENT_SECRET"), c.client_secret)
            .env(format!("{p}PROFILE_ARN"), c.profile_arn);
    }
    let mut process = Process::spawn("qgate", command)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    wait_until_healthy(&mut process, addr, "/health").await?;
    Ok(Relay {
        process,
        addr,
        count_children: false,
    })
}

/// Polls `path` until it answers 200 (or the child dies, or time runs out).
pub(crate) async fn wait_until_healthy(
    process: &mut Process,
    addr: SocketAddr,
    path: &str,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        process.check_alive()?;
        if let Ok(mut connection) = Connection::open(addr).await
            && let Ok((200, _)) = connection.get(addr, path).await
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{} did not answer {path} on {addr} in time", process.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback port nobody listens on right now (bind port 0, note it, release it).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File> {
    let path: PathBuf = dir.join(name);
    std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))
}

/// An access token for simulated account 1, from the simulator's `/token`.
pub async fn sim_access_token(sim: SocketAddr) -> Result<String> {
    let c = qgate_sim::credentials(1);
    let body = serde_json::json!({
        "grantType": "refresh_token",
        "refreshToken": c.refresh_token,
        "clientId": c.client_id,
        "clientSecret": c.client_secret,
    });
    let mut connection = Connection::open(sim).await?;
    let (status, reply) = connection
        .post_json(sim, "/token", serde_json::to_vec(&body)?.into())
        .await?;
    if status != 200 {
        bail!("the simulator's /token answered {status}");
    }
    let reply: serde_json::Value = serde_json::from_slice(&reply)?;
    reply
        .get("accessToken")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .context("no accessToken in the simulator's /token reply")
}

/// Requests in flight at the simulator, summed over accounts (from `/_sim/stats`).
pub async fn sim_in_flight(connection: &mut Connection, sim: SocketAddr) -> Result<u64> {
    let (status, body) = connection.get(sim, "/_sim/stats").await?;
    if status != 200 {
        bail!("/_sim/stats answered {status}");
    }
    let stats: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(stats
        .get("accounts")
        .and_then(|a| a.as_object())
        .map_or(0, |accounts| {
            accounts
                .values()
                .filter_map(|a| a.get("in_flight").and_then(|n| n.as_u64()))
                .sum()
        }))
}
