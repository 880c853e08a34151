//! For tests that start a real server process (redis-server, Qdrant): free ports, a TCP probe,
//! and the wait until the server is ready (or has died) — shared by `codemem_kv::testing` and
//! `codemem_store::testing`.

use std::process::Child;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (free when asked; a parallel test may take it before use).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// True when something accepts TCP connections on `127.0.0.1:port`.
pub fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_ok()
}

/// Polls `ready` every `every` until it answers true (Ok), the child exits (Err naming its
/// status) or `limit` passes (Err). `what` names the server in the messages.
pub fn wait_ready(
    child: &mut Child,
    what: &str,
    limit: Duration,
    every: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let t = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited during start-up ({status})"));
        }
        if ready() {
            return Ok(());
        }
        if t.elapsed() > limit {
            return Err(format!("{what} did not become ready within {limit:?}"));
        }
        std::thread::sleep(every);
    }
}
