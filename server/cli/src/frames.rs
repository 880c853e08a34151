//! What a relay (`codemem lsp` / `codemem mcp` attached to the daemon) must know of the
//! messages it forwards, so that a session survives a daemon crash: the handshake to replay,
//! the open documents to re-send, the requests still waiting for an answer, and whether the
//! client said `shutdown` / `exit` (the relay's exit code follows the spec from them).
//!
//! Client bytes pass to the daemon unchanged (malformed frames are the daemon's to answer);
//! the tracker reads a copy. LSP frames carry `Content-Length` headers; MCP over stdio is one
//! JSON message per line.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Lsp,
    Mcp,
}

/// Splits a byte stream into message bodies; on garbage it resynchronises at the next frame.
pub struct Scanner {
    framing: Framing,
    buf: Vec<u8>,
}

const HEADER: &[u8] = b"Content-Length:";
/// Larger messages are skipped, not buffered (they are neither handshakes nor `exit`).
const MAX_TRACKED_BODY: usize = 8 << 20;

impl Scanner {
    pub fn new(framing: Framing) -> Self {
        Scanner {
            framing,
            buf: Vec::new(),
        }
    }

    /// Feeds bytes; calls `on_body` with each complete message body.
    pub fn feed(&mut self, bytes: &[u8], on_body: &mut dyn FnMut(&[u8])) {
        self.buf.extend_from_slice(bytes);
        match self.framing {
            Framing::Mcp => {
                while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=nl).collect();
                    let body = line.strip_suffix(b"\n").unwrap_or(&line);
                    let body = body.strip_suffix(b"\r").unwrap_or(body);
                    if !body.is_empty() && body.len() <= MAX_TRACKED_BODY {
                        on_body(body);
                    }
                }
                if self.buf.len() > MAX_TRACKED_BODY {
                    self.buf.clear();
                }
            }
            Framing::Lsp => loop {
                let Some(start) = find(&self.buf, HEADER) else {
                    // Keep a tail that may hold the start of a header.
                    let keep = self.buf.len().min(HEADER.len());
                    self.buf.drain(..self.buf.len() - keep);
                    return;
                };
                self.buf.drain(..start);
                let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                    return;
                };
                let headers = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let len = headers
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let Some(len) = len.filter(|&l| l <= MAX_TRACKED_BODY) else {
                    self.buf.drain(..HEADER.len());
                    continue;
                };
                if self.buf.len() < end + 4 + len {
                    return;
                }
                on_body(&self.buf[end + 4..end + 4 + len]);
                self.buf.drain(..end + 4 + len);
            },
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One message as the wire carries it.
pub fn frame(framing: Framing, body: &[u8]) -> Vec<u8> {
    match framing {
        Framing::Lsp => {
            let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
            out.extend_from_slice(body);
            out
        }
        Framing::Mcp => {
            let mut out = body.to_vec();
            out.push(b'\n');
            out
        }
    }
}

/// The session state a new daemon needs to take over.
#[derive(Default)]
pub struct Tracker {
    pub shutdown: bool,
    pub exit: bool,
    /// The client's `initialize` request and its `initialized` notification.
    pub initialize: Option<(Value, Vec<u8>)>,
    pub initialized: Option<Vec<u8>>,
    /// LSP: per open document, its didOpen and every later didChange, in order.
    docs: HashMap<String, Vec<Vec<u8>>>,
    /// LSP: workspace-folder changes after initialize.
    folders: Vec<Vec<u8>>,
    /// Requests the client sent that have no answer yet (id as JSON text → id).
    pending: BTreeMap<String, Value>,
}

impl Tracker {
    /// A message from the client.
    pub fn client(&mut self, body: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        let method = v.get("method").and_then(Value::as_str);
        let id = v.get("id").filter(|i| !i.is_null()).cloned();
        if let (Some(_), Some(id)) = (method, &id) {
            self.pending.insert(id.to_string(), id.clone());
        }
        match method {
            Some("initialize") => self.initialize = id.map(|i| (i, body.to_vec())),
            Some("initialized" | "notifications/initialized") => {
                self.initialized = Some(body.to_vec())
            }
            Some("shutdown") => self.shutdown = true,
            Some("exit") => self.exit = true,
            Some("textDocument/didOpen") => {
                if let Some(u) = doc_uri(&v) {
                    self.docs.insert(u, vec![body.to_vec()]);
                }
            }
            Some("textDocument/didChange") => {
                if let Some(d) = doc_uri(&v).and_then(|u| self.docs.get_mut(&u)) {
                    d.push(body.to_vec());
                }
            }
            Some("textDocument/didClose") => {
                if let Some(u) = doc_uri(&v) {
                    self.docs.remove(&u);
                }
            }
            Some("workspace/didChangeWorkspaceFolders") => self.folders.push(body.to_vec()),
            _ => {}
        }
    }

    /// A message from the daemon: a response settles a pending request.
    pub fn daemon(&mut self, body: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        if v.get("method").is_none() {
            if let Some(id) = v.get("id") {
                self.pending.remove(&id.to_string());
            }
        }
    }

    /// What a new daemon gets after the `initialize` exchange: `initialized`, the folder changes
    /// and the open documents with their edits.
    pub fn replay(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self.initialized.iter().cloned().collect();
        out.extend(self.folders.iter().cloned());
        for d in self.docs.values() {
            out.extend(d.iter().cloned());
        }
        out
    }

    /// Error answers for the requests the dead daemon never answered (the handshake excepted).
    pub fn abandon_pending(&mut self) -> Vec<Vec<u8>> {
        let init = self.initialize.as_ref().map(|(i, _)| i.to_string());
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .filter(|(k, _)| Some(k) != init.as_ref())
            .map(|(_, id)| {
                serde_json::to_vec(&json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": {"code": -32603, "message": "the codemem daemon restarted while answering; send the request again"},
                }))
                .unwrap_or_default()
            })
            .collect()
    }
}

fn doc_uri(v: &Value) -> Option<String> {
    v.pointer("/params/textDocument/uri")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsp(body: &str) -> Vec<u8> {
        frame(Framing::Lsp, body.as_bytes())
    }

    fn track(framing: Framing, bytes: &[u8]) -> Tracker {
        let (mut scan, mut t) = (Scanner::new(framing), Tracker::default());
        // One byte at a time: headers and bodies split anywhere.
        for b in bytes {
            scan.feed(std::slice::from_ref(b), &mut |body| t.client(body));
        }
        t
    }

    #[test]
    fn sees_shutdown_and_exit_across_split_reads_and_garbage() {
        let cases: &[(&[&str], bool, bool)] = &[
            (
                &[r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#],
                false,
                false,
            ),
            (
                &[
                    r#"{"jsonrpc":"2.0","id":2,"method":"shutdown"}"#,
                    r#"{"jsonrpc":"2.0","method":"exit"}"#,
                ],
                true,
                true,
            ),
            (&[r#"{"jsonrpc":"2.0","method":"exit"}"#], false, true),
            (
                &["not json", r#"{"jsonrpc":"2.0","method":"exit"}"#],
                false,
                true,
            ),
        ];
        for (bodies, shutdown, exit) in cases {
            let mut bytes = b"garbage before\r\n".to_vec();
            for b in *bodies {
                bytes.extend(lsp(b));
            }
            let t = track(Framing::Lsp, &bytes);
            assert_eq!((t.shutdown, t.exit), (*shutdown, *exit), "{bodies:?}");
        }
    }

    #[test]
    fn a_bad_length_does_not_stall_the_scanner() {
        let mut bytes = b"Content-Length: x\r\n\r\n".to_vec();
        bytes.extend(lsp(r#"{"jsonrpc":"2.0","method":"exit"}"#));
        assert!(track(Framing::Lsp, &bytes).exit);
    }

    #[test]
    fn replays_the_handshake_and_open_documents_and_fails_pending_requests() {
        let msgs = [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///a.py","text":"x"}}}"#,
            r#"{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":{"uri":"file:///a.py"}}}"#,
            r#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///b.py","text":"y"}}}"#,
            r#"{"jsonrpc":"2.0","method":"textDocument/didClose","params":{"textDocument":{"uri":"file:///b.py"}}}"#,
            r#"{"jsonrpc":"2.0","id":"s1","method":"codemem/search","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"textDocument/hover","params":{}}"#,
        ];
        let bytes: Vec<u8> = msgs.iter().flat_map(|m| lsp(m)).collect();
        let mut t = track(Framing::Lsp, &bytes);
        t.daemon(br#"{"jsonrpc":"2.0","id":7,"result":null}"#);
        assert_eq!(
            t.initialize.as_ref().map(|(id, _)| id.clone()),
            Some(json!(1))
        );
        let replay: Vec<String> = t
            .replay()
            .iter()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .collect();
        assert_eq!(
            replay,
            vec![
                msgs[1].to_string(),
                msgs[2].to_string(),
                msgs[3].to_string()
            ],
            "b.py was closed"
        );
        let errors: Vec<Value> = t
            .abandon_pending()
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "hover was answered; initialize is the relay's to redo: {errors:?}"
        );
        assert_eq!(errors[0]["id"], json!("s1"));
        assert_eq!(errors[0]["error"]["code"], json!(-32603));
    }

    #[test]
    fn mcp_lines_are_tracked_too() {
        let bytes = b"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\"}\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\r\nnot json\n";
        let t = track(Framing::Mcp, bytes);
        assert!(t.initialize.is_some() && t.initialized.is_some());
    }
}
