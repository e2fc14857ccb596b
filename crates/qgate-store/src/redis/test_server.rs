//! A private `redis-server` for tests (feature `test-support`): listens only on a unix
//! socket in its own temp dir (`--port 0`), keeps nothing on disk, and dies with its
//! handle. Tests running in parallel never share one, and no TCP port is used.
//!
//! If `redis-server` is not installed the test fails with instructions: the Redis tests
//! must never pass silently without a server.

#![allow(clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running (or stopped, restartable) server on `{tempdir}/redis.sock`.
#[derive(Debug)]
pub struct RedisServer {
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Option<Child>,
}

fn binary() -> String {
    std::env::var("QGATE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let socket = dir.path().join("redis.sock");
        let mut server = RedisServer {
            dir,
            socket,
            child: None,
        };
        server.restart();
        server
    }

    /// `redis+unix:///…/redis.sock`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kill the server (an outage). Its data is gone, as after a crash without
    /// persistence.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Start again on the same socket (stopping a running one first).
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(binary())
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&self.socket)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start `{}` ({err}). The Redis tests need a real redis-server: \
                     run ./scripts/test.sh (it installs one) or `apt-get install redis-server`",
                    binary()
                )
            });
        self.child = Some(child);
        for _ in 0..400 {
            if self.answers_ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not answer on {}", self.socket.display());
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
