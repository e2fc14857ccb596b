//! nginx as a plain relay in front of the simulator: the practical floor for "what does it
//! cost to pass these bytes through another process". No translation, no buffering
//! (`proxy_buffering off`, `proxy_request_buffering off`), HTTP/1.1 with upstream
//! keep-alive, `tcp_nodelay on`, no access log. The config is generated into the run's
//! temp dir and nginx runs in the foreground (`daemon off`) as our child.

use super::{Process, Relay, free_port};
use anyhow::{Context, Result, bail};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// The nginx binary on `PATH`, if any.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// What the generated config needs.
#[derive(Debug, Clone, Copy)]
pub struct NginxSettings {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub workers: usize,
    /// Client plus upstream connections each worker may hold.
    pub worker_connections: u64,
}

/// The generated `nginx.conf`.
pub fn config(settings: &NginxSettings, dir: &Path) -> String {
    let dir = dir.display();
    let NginxSettings {
        listen,
        upstream,
        workers,
        worker_connections,
    } = settings;
    // Every stream holds a client and an upstream socket.
    let nofile = worker_connections * 2 + 64;
    format!(
        r#"daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;

events {{
    worker_connections {worker_connections};
    multi_accept on;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 0;
    # Claude Code bodies (~80 KB) stay in memory.
    client_body_buffer_size 1m;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    tcp_nodelay on;

    upstream sim {{
        server {upstream};
        keepalive 1024;
        keepalive_requests 10000000;
        keepalive_timeout 300s;
    }}

    server {{
        listen {listen} backlog=4096;
        location / {{
            proxy_pass http://sim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}
    }}
}}
"#
    )
}

/// Starts nginx relaying to `upstream`; waits until it accepts connections.
pub async fn spawn(
    nginx: &Path,
    upstream: SocketAddr,
    worker_connections: u64,
    dir: &Path,
) -> Result<Relay> {
    let dir = dir.join("nginx");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let settings = NginxSettings {
        listen,
        upstream,
        workers: std::thread::available_parallelism().map_or(1, usize::from),
        worker_connections,
    };
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config(&settings, &dir))?;
    let mut command = Command::new(nginx);
    command
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(super::log_file(&dir, "nginx-stderr.log")?);
    let mut process = Process::spawn("nginx", command)?;
    let deadline = tokio::time::Instant::now() + super::START_TIMEOUT;
    loop {
        process.check_alive()?;
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("nginx did not listen on {listen} in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Relay {
        process,
        addr: listen,
        count_children: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_a_plain_unbuffered_keepalive_relay() {
        let conf = config(
            &NginxSettings {
                listen: "127.0.0.1:1000".parse().unwrap(),
                upstream: "127.0.0.1:2000".parse().unwrap(),
                workers: 2,
                worker_connections: 30_000,
            },
            Path::new("/tmp/x"),
        );
        for needle in [
            "listen 127.0.0.1:1000",
            "server 127.0.0.1:2000;",
            "proxy_buffering off;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "tcp_nodelay on;",
            "keepalive 1024;",
            "worker_connections 30000;",
            "worker_rlimit_nofile 60064;",
            "daemon off;",
        ] {
            assert!(conf.contains(needle), "missing {needle:?} in\n{conf}");
        }
    }
}
