//! A real `redis-server` for tests, on a free port, without persistence; killed on drop.
//! A missing `redis-server` is a test failure saying how to install it, never a silent skip.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use codemem_resilience::testing::free_port;
use codemem_resilience::testing::wait_ready;

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut s = RedisServer {
            child: None,
            port: free_port(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it (`apt-get install -y redis-server`) — the team-mode tests need a real server")
            });
        let port = self.port;
        if let Err(e) = wait_ready(
            &mut child,
            "redis-server",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || ping(port),
        ) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{e}");
        }
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 8];
    s.write_all(b"PING\r\n").is_ok()
        && matches!(s.read(&mut buf), Ok(n) if n >= 5 && &buf[..5] == b"+PONG")
}
