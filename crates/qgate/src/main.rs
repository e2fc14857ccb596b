//! The `qgate` binary: command line, logging, signals. Everything else lives in
//! `qgate-gateway` (the service) and `qgate-sim` (the Amazon Q simulator).

mod demo;
mod logging;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use qgate_gateway::config::{self, EnvSource, Overrides};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "qgate",
    version,
    about = "Anthropic Messages API gateway over a pool of Amazon Q Developer accounts"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway with accounts from the environment / .env / --config.
    Serve {
        /// TOML config file (also QGATE_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Bind address (overrides HOST).
        #[arg(long)]
        host: Option<IpAddr>,
        /// Port (overrides PORT).
        #[arg(long)]
        port: Option<u16>,
        /// Allow a non-loopback bind without client API keys.
        #[arg(long)]
        insecure_no_auth: bool,
    },
    /// Run the gateway against the built-in Amazon Q simulator, with local state.
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value_t = 3)]
        accounts: usize,
        /// Where demo state (token caches, pool state) lives.
        #[arg(long, default_value = ".qgate-demo")]
        state_dir: PathBuf,
    },
    /// Run only the Amazon Q simulator.
    Sim {
        #[arg(long, default_value_t = 9090)]
        port: u16,
        #[arg(long, default_value_t = 3)]
        accounts: usize,
        /// Access token lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        token_ttl: u64,
        /// Rotate refresh tokens on every refresh (the old one stops working).
        #[arg(long)]
        rotate_refresh_tokens: bool,
    },
    /// Validate the configuration and print every problem.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    // A `.env` in the working directory is read if present (never overriding real env).
    let _ = dotenvy::dotenv();
    logging::init(cli.log_format);
    // `serve` loads its configuration before the runtime exists: with worker threads the
    // main runtime only accepts connections and runs the background work (refresh, health
    // checks, persistence, cluster sync), so one thread is enough.
    let serve_cfg = match &cli.command {
        Command::Serve {
            config,
            host,
            port,
            insecure_no_auth,
        } => Some(serve_config(
            config.clone(),
            *host,
            *port,
            *insecure_no_auth,
        )),
        _ => None,
    };
    let mut builder = match serve_cfg.as_ref().map(|c| c.server.workers) {
        Some(qgate_gateway::config::Workers::Threads(_)) => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let rt = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(cli.command, serve_cfg))
}

/// The configuration `serve` runs with; every problem is printed and the process exits 2.
fn serve_config(
    config_file: Option<PathBuf>,
    host: Option<std::net::IpAddr>,
    port: Option<u16>,
    insecure_no_auth: bool,
) -> config::Config {
    let overrides = Overrides {
        config_file,
        host,
        port,
        insecure_no_auth,
    };
    match config::load(&EnvSource::from_process(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

async fn serve(cfg: config::Config) -> Result<()> {
    let addr = std::net::SocketAddr::new(cfg.server.host, cfg.server.port);
    let listener = qgate_gateway::server::bind(addr).with_context(|| format!("binding {addr}"))?;
    let handle = match qgate_gateway::start(cfg, listener).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("qgate: {e}");
            std::process::exit(2);
        }
    };
    serve_until_stopped(&handle).await;
    tracing::info!("shutting down: draining in-flight requests");
    handle.shutdown().await;
    Ok(())
}

/// Runs a command; `serve_cfg` is the configuration `main` already loaded for `serve`.
async fn run(cmd: Command, serve_cfg: Option<config::Config>) -> Result<()> {
    match cmd {
        Command::Serve {
            config,
            host,
            port,
            insecure_no_auth,
        } => {
            let cfg =
                serve_cfg.unwrap_or_else(|| serve_config(config, host, port, insecure_no_auth));
            serve(cfg).await
        }
        Command::Demo {
            port,
            accounts,
            state_dir,
        } => demo::run(port, accounts, state_dir).await,
        Command::Sim {
            port,
            accounts,
            token_ttl,
            rotate_refresh_tokens,
        } => {
            let cfg = qgate_sim::SimConfig {
                accounts,
                token_ttl: std::time::Duration::from_secs(token_ttl),
                rotate_refresh_tokens,
                ..Default::default()
            };
            let listener = qgate_gateway::server::bind(([127, 0, 0, 1], port).into())
                .with_context(|| format!("binding 127.0.0.1:{port}"))?;
            let sim = qgate_sim::start(cfg, listener).await?;
            println!(
                "Amazon Q simulator on {} with {accounts} account(s)",
                sim.base_url()
            );
            wait_for_signal().await;
            sim.shutdown().await;
            Ok(())
        }
        Command::CheckConfig { config } => {
            let overrides = Overrides {
                config_file: config,
                ..Default::default()
            };
            match config::load(&EnvSource::from_process(), &overrides) {
                Ok(c) => {
                    println!(
                        "configuration OK: {} account(s), strategy {:?}",
                        c.accounts.len(),
                        c.pool.strategy
                    );
                    match &c.cluster {
                        // The URL may hold a password: show only whether it is set.
                        Some(cl) => println!(
                            "multi-instance mode: on (Redis prefix `{}`, secrets in Redis: {})",
                            cl.prefix,
                            if cl.encryption_key.is_some() {
                                "encrypted"
                            } else {
                                "not stored (no QGATE_ENCRYPTION_KEY)"
                            }
                        ),
                        None => println!("multi-instance mode: off (local state)"),
                    }
                    Ok(())
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            }
        }
    }
}

/// Waits for SIGINT or SIGTERM; each SIGHUP meanwhile reloads the configuration file
/// (a bad file is logged with every problem and the running configuration kept).
async fn serve_until_stopped(handle: &qgate_gateway::GatewayHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hangup) = signal(SignalKind::hangup()) {
            let stop = wait_for_signal();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = hangup.recv() => {
                        tracing::info!("SIGHUP: reloading the configuration");
                        // The outcome is logged (and counted) by `reload` itself.
                        let _ = qgate_gateway::reload::reload(handle.state()).await;
                    }
                }
            }
        }
    }
    wait_for_signal().await;
}

/// SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
