//! A real Qdrant server for tests: started on free ports with its storage in a temporary
//! directory, stopped (killed) on drop. No mocks.
//!
//! The binary is `$CODEMEM_QDRANT_BIN`, else `../shared/bin/qdrant` next to the repository
//! checkout. A missing binary is a test failure with a message saying how to provide it, never a
//! silent skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use codemem_resilience::testing::free_port;
use codemem_resilience::testing::{accepts, wait_ready};

/// Where the Qdrant server binary is looked for.
pub fn qdrant_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CODEMEM_QDRANT_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    // server/store → repository root → its parent.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bin/qdrant")
}

pub struct QdrantServer {
    child: Option<Child>,
    pub http_port: u16,
    pub grpc_port: u16,
    dir: tempfile::TempDir,
}

impl QdrantServer {
    /// Starts a server and waits until `/readyz` answers and the gRPC port accepts connections
    /// (panics with a clear message otherwise).
    pub fn start() -> QdrantServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut s = QdrantServer {
            child: None,
            http_port: 0,
            grpc_port: 0,
            dir,
        };
        // A port picked as free can be taken by a parallel test before the server binds it:
        // start again on other ports when the server does not come up.
        for attempt in 1..=3 {
            s.http_port = free_port();
            s.grpc_port = free_port();
            match s.try_spawn() {
                Ok(()) => return s,
                Err(e) if attempt < 3 => {
                    eprintln!("qdrant test server: {e}; retrying on other ports")
                }
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!()
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let bin = qdrant_bin();
        assert!(
            bin.is_file(),
            "the Qdrant server binary is missing at {} — set CODEMEM_QDRANT_BIN to a Qdrant server \
             (v1.18, e.g. ../shared/bin/qdrant); the team-mode tests need a real server",
            bin.display()
        );
        let mut child = Command::new(&bin)
            .current_dir(self.dir.path())
            .env("QDRANT__SERVICE__HTTP_PORT", self.http_port.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", self.grpc_port.to_string())
            .env(
                "QDRANT__STORAGE__STORAGE_PATH",
                self.dir.path().join("storage"),
            )
            .env(
                "QDRANT__STORAGE__SNAPSHOTS_PATH",
                self.dir.path().join("snapshots"),
            )
            .env("QDRANT__TELEMETRY_DISABLED", "true")
            .env("QDRANT__LOG_LEVEL", "WARN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let (http, grpc) = (self.http_port, self.grpc_port);
        // The HTTP API can be ready before the gRPC listener (what qdrant-client uses) is bound.
        let ready = wait_ready(
            &mut child,
            "the Qdrant server",
            Duration::from_secs(60),
            Duration::from_millis(50),
            || http_get_ok(http, "/readyz") && accepts(grpc),
        );
        match ready {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("{e} (HTTP /readyz on {http}, gRPC on {grpc})"))
            }
        }
    }

    /// The gRPC URL qdrant-client uses.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Kills the server (SIGKILL); its storage stays for [`restart`](Self::restart).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same ports and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for QdrantServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A bare HTTP/1.0 GET; true on a 200 answer.
fn http_get_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf[..n].starts_with(b"HTTP/1.") && &buf[9..12] == b"200")
}
