//! A guard in front of the LSP transport: reads `Content-Length` frames from the client,
//! answers malformed ones itself (JSON-RPC parse error / invalid request) and resynchronises
//! on the next header, so one bad message never ends the session. Only well-formed messages
//! reach tower-lsp-server; its replies and the guard's errors are written whole, one frame
//! at a time, to stdout.

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

const HEADER: &[u8] = b"content-length:";
/// Larger bodies are refused (a 10 MB document fits comfortably).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What the client asked for, as seen by the guard.
#[derive(Default, Debug, Clone, Copy)]
pub struct Seen {
    pub shutdown: bool,
    pub exit: bool,
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn error_frame(id: Value, code: i64, message: String) -> Vec<u8> {
    let v = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    frame(v.to_string().as_bytes())
}

/// Checks one body; `Ok` = forward it, `Err` = the error frame to send instead.
fn check(body: &[u8], seen: &mut Seen) -> Result<(), Vec<u8>> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        error_frame(
            Value::Null,
            -32700,
            format!("parse error: {e}; send one JSON-RPC object per frame"),
        )
    })?;
    let Value::Object(m) = &v else {
        return Err(error_frame(
            Value::Null,
            -32600,
            "invalid request: expected a JSON object (batches are not used by LSP)".into(),
        ));
    };
    let id = m.get("id").cloned().unwrap_or(Value::Null);
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(error_frame(
            id,
            -32600,
            "invalid request: \"jsonrpc\" must be \"2.0\"".into(),
        ));
    }
    match m.get("method") {
        Some(Value::String(method)) => {
            if method == "shutdown" {
                seen.shutdown = true;
            }
            if method == "exit" {
                seen.exit = true;
            }
            Ok(())
        }
        Some(_) => Err(error_frame(
            id,
            -32600,
            "invalid request: \"method\" must be a string".into(),
        )),
        // Responses to the server's own requests.
        None if m.contains_key("result") || m.contains_key("error") => Ok(()),
        None => Err(error_frame(
            id,
            -32600,
            "invalid request: no \"method\"".into(),
        )),
    }
}

/// Reads client frames from `input`, forwards good ones to `to_server`, sends error frames to
/// `out`. Returns when the input ends or after `exit`.
pub async fn guard_input<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    input: R,
    mut to_server: W,
    out: mpsc::UnboundedSender<Vec<u8>>,
) -> Seen {
    let mut r = BufReader::new(input);
    let mut seen = Seen::default();
    let mut line = Vec::new();
    'frames: loop {
        // Headers up to the blank line; anything before a Content-Length header is skipped.
        let mut length: Option<Result<usize, String>> = None;
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break 'frames,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let trimmed = text.trim();
            if trimmed.is_empty() {
                if length.is_some() {
                    break;
                }
                continue;
            }
            // Resynchronise: a header may follow garbage on the same line.
            let lower = trimmed.to_ascii_lowercase();
            if let Some(at) = lower.find(std::str::from_utf8(HEADER).unwrap_or("content-length:")) {
                let value = trimmed[at + HEADER.len()..].trim();
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad Content-Length {value:?}")),
                );
            } else if length.is_none() && !lower.starts_with("content-type:") {
                let _ = out.send(error_frame(
                    Value::Null,
                    -32700,
                    "parse error: expected a Content-Length header".into(),
                ));
            }
        }
        let n = match length {
            Some(Ok(n)) if n <= MAX_BODY => n,
            Some(Ok(n)) => {
                let _ = out.send(error_frame(
                    Value::Null,
                    -32600,
                    format!("message of {n} bytes is over the {MAX_BODY}-byte limit"),
                ));
                // Skip the body.
                let mut sink = (&mut r).take(n as u64);
                let _ = tokio::io::copy(&mut sink, &mut tokio::io::sink()).await;
                continue;
            }
            Some(Err(msg)) => {
                let _ = out.send(error_frame(
                    Value::Null,
                    -32700,
                    format!("parse error: {msg}"),
                ));
                continue;
            }
            None => continue,
        };
        let mut body = vec![0u8; n];
        if r.read_exact(&mut body).await.is_err() {
            let _ = out.send(error_frame(
                Value::Null,
                -32700,
                "parse error: the input ended inside a message".into(),
            ));
            break;
        }
        match check(&body, &mut seen) {
            Ok(()) => {
                if to_server.write_all(&frame(&body)).await.is_err()
                    || to_server.flush().await.is_err()
                {
                    break;
                }
                if seen.exit {
                    break;
                }
            }
            Err(reply) => {
                let _ = out.send(reply);
            }
        }
    }
    let _ = to_server.shutdown().await;
    seen
}

/// Splits the server's output into whole frames and hands them to `out`.
pub async fn split_output<R: AsyncRead + Unpin>(
    from_server: R,
    out: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut r = BufReader::new(from_server);
    let mut line = Vec::new();
    loop {
        let mut header = Vec::new();
        let mut n = None;
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            header.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
            if let Some(v) = text.strip_prefix("content-length:") {
                n = v.trim().parse::<usize>().ok();
            }
            if text.trim().is_empty() {
                break;
            }
        }
        let Some(n) = n else { continue };
        let mut body = vec![0u8; n];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        header.extend_from_slice(&body);
        if out.send(header).is_err() {
            return;
        }
    }
}

/// Writes frames to `stdout` in order, flushing each.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    mut stdout: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(f) = rx.recv().await {
        if stdout.write_all(&f).await.is_err() || stdout.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(input: &[u8]) -> (Vec<Value>, Vec<Value>, Seen) {
        let (server_w, mut server_r) = tokio::io::duplex(1 << 20);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let seen = guard_input(input, server_w, tx).await;
        let mut forwarded = Vec::new();
        server_r.read_to_end(&mut forwarded).await.unwrap();
        let parse = |bytes: &[u8]| -> Vec<Value> {
            let text = String::from_utf8_lossy(bytes).to_string();
            text.split("Content-Length:")
                .filter(|s| !s.trim().is_empty())
                .map(|s| serde_json::from_str(s.split_once("\r\n\r\n").unwrap().1).unwrap())
                .collect()
        };
        let mut errors = Vec::new();
        while let Ok(f) = rx.try_recv() {
            errors.extend(parse(&f));
        }
        (parse(&forwarded), errors, seen)
    }

    fn msg(body: &str) -> Vec<u8> {
        frame(body.as_bytes())
    }

    #[tokio::test]
    async fn bad_frames_get_errors_and_good_ones_pass() {
        let mut input = Vec::new();
        input.extend(msg(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
        ));
        input.extend(msg(r#"{"jsonrpc":"2.0","id":2,"method":"#));
        input.extend(msg(r#"{"jsonrpc":"2.0","id":3,"method":42}"#));
        input.extend(msg(r#"{"jsonrpc":"2.0","id":4}"#));
        input.extend(msg(
            "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"x\",\"params\":\"\\ud800\"}",
        ));
        input.extend(b"Content-Length: abc\r\n\r\n{}".iter());
        input.extend(b"Content-Length: 5\r\n\r\n{\"jsonrpc\":\"2.0\"}".iter());
        input.extend(msg(r#"{"jsonrpc":"2.0","id":6,"method":"shutdown"}"#));
        input.extend(msg(r#"{"jsonrpc":"2.0","method":"exit"}"#));
        let (forwarded, errors, seen) = run(&input).await;
        let ids: Vec<&Value> = forwarded.iter().map(|v| &v["id"]).collect();
        assert_eq!(ids, [&json!(1), &json!(6), &Value::Null], "{forwarded:?}");
        let codes: Vec<i64> = errors
            .iter()
            .map(|e| e["error"]["code"].as_i64().unwrap())
            .collect();
        assert!(
            codes.contains(&-32700) && codes.contains(&-32600),
            "{errors:?}"
        );
        assert!(errors
            .iter()
            .any(|e| e["id"] == json!(3) && e["error"]["code"] == json!(-32600)));
        assert!(errors
            .iter()
            .any(|e| e["id"] == json!(4) && e["error"]["code"] == json!(-32600)));
        assert!(seen.shutdown && seen.exit);
    }
}
