//! MCP over stdio with a line guard in front of rmcp's transport: reads newline-delimited
//! JSON-RPC from the client, answers what rmcp would drop or answer without an id (not JSON,
//! invalid UTF-8, an object that is no valid message) with a JSON-RPC error carrying the
//! request's id when it can be read, and forwards every other line to rmcp through an
//! in-memory pipe. rmcp's replies and the guard's errors reach stdout whole, one line at a time.

use rmcp::model::ClientJsonRpcMessage;
use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Longest accepted line (rmcp's own limit).
pub const MAX_LINE: usize = rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;
const BOM: &[u8] = b"\xEF\xBB\xBF";

pub(crate) fn error_line(id: Value, code: i64, message: String) -> Vec<u8> {
    let mut line = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// The id of a message, when it has a usable one (a string or a number).
pub(crate) fn id_of(v: &Value) -> Value {
    match v.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    }
}

/// Checks one line (without its newline); `None` = forward it to rmcp, `Some` = the error
/// line to send instead.
fn check(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_prefix(BOM).unwrap_or(line);
    let value = match serde_json::from_slice::<Value>(line) {
        Ok(v) => v,
        Err(e) => {
            if std::str::from_utf8(line).is_err() {
                // Read it leniently to find the id, so the client is not left waiting.
                let id = serde_json::from_str::<Value>(&String::from_utf8_lossy(line))
                    .map(|v| id_of(&v))
                    .unwrap_or(Value::Null);
                return Some(error_line(
                    id,
                    -32700,
                    "parse error: the message is not valid UTF-8; send UTF-8 JSON".into(),
                ));
            }
            return Some(error_line(
                Value::Null,
                -32700,
                format!("parse error: {e}; send one JSON-RPC object per line"),
            ));
        }
    };
    if serde_json::from_value::<ClientJsonRpcMessage>(value.clone()).is_ok() {
        return None;
    }
    match &value {
        // A notification rmcp cannot read: it ignores or answers it itself (no id to answer).
        Value::Object(m)
            if m.get("method").is_some_and(Value::is_string) && !m.contains_key("id") =>
        {
            None
        }
        Value::Object(m) => {
            let why = if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
                "\"jsonrpc\" must be \"2.0\"".to_string()
            } else if !m.contains_key("method")
                && !m.contains_key("result")
                && !m.contains_key("error")
            {
                "a request needs a \"method\"".to_string()
            } else if !matches!(
                m.get("id"),
                None | Some(Value::String(_) | Value::Number(_))
            ) {
                "\"id\" must be a string or a number".to_string()
            } else {
                "the method's \"params\" do not match what it takes".to_string()
            };
            Some(error_line(
                id_of(&value),
                -32600,
                format!("invalid request: {why}"),
            ))
        }
        _ => Some(error_line(
            Value::Null,
            -32600,
            "invalid request: expected a JSON-RPC object (batches are not supported)".into(),
        )),
    }
}

enum Line {
    Got,
    TooLong,
    Eof,
}

/// Reads one line into `buf` (newline included), never holding more than `MAX_LINE` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Line {
    buf.clear();
    let mut too_long = false;
    loop {
        let (used, done) = {
            let available = match r.fill_buf().await {
                Ok(a) => a,
                Err(_) => return Line::Eof,
            };
            if available.is_empty() {
                return if too_long {
                    Line::TooLong
                } else if buf.is_empty() {
                    Line::Eof
                } else {
                    Line::Got
                };
            }
            let nl = available.iter().position(|b| *b == b'\n');
            let take = nl.map_or(available.len(), |i| i + 1);
            if !too_long && buf.len() + take > MAX_LINE {
                too_long = true;
                buf.clear();
            }
            if !too_long {
                buf.extend_from_slice(&available[..take]);
            }
            (take, nl.is_some())
        };
        r.consume(used);
        if done {
            return if too_long { Line::TooLong } else { Line::Got };
        }
    }
}

/// Reads client lines from `input`, forwards good ones to `to_server` and sends error lines
/// to `out`. Returns when the input ends (and then closes `to_server`).
pub async fn guard_input<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    input: R,
    mut to_server: W,
    out: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut r = BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        match read_line(&mut r, &mut buf).await {
            Line::Eof => break,
            Line::TooLong => {
                let _ = out.send(error_line(
                    Value::Null,
                    -32600,
                    format!(
                        "invalid request: a message is longer than {MAX_LINE} bytes; send less"
                    ),
                ));
                continue;
            }
            Line::Got => {}
        }
        let mut line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match check(line) {
            Some(reply) => {
                let _ = out.send(reply);
            }
            None => {
                if to_server.write_all(line).await.is_err()
                    || to_server.write_all(b"\n").await.is_err()
                    || to_server.flush().await.is_err()
                {
                    break;
                }
            }
        }
    }
    let _ = to_server.shutdown().await;
}

/// Splits the server's output into whole lines and hands them to `out`.
pub async fn split_output<R: AsyncRead + Unpin>(
    from_server: R,
    out: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut r = BufReader::new(from_server);
    loop {
        let mut line = Vec::new();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        if out.send(line).is_err() {
            return;
        }
    }
}

/// Writes lines to `stdout` in order, flushing each.
pub async fn write_lines<W: AsyncWrite + Unpin>(
    mut stdout: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(l) = rx.recv().await {
        if stdout.write_all(&l).await.is_err() || stdout.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn run(input: &[u8]) -> (Vec<Value>, Vec<Value>) {
        let (server_w, mut server_r) = tokio::io::duplex(1 << 20);
        let (tx, mut rx) = mpsc::unbounded_channel();
        guard_input(input, server_w, tx).await;
        let mut forwarded = Vec::new();
        server_r.read_to_end(&mut forwarded).await.unwrap();
        let forwarded = forwarded
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let mut errors = Vec::new();
        while let Ok(l) = rx.try_recv() {
            errors.push(serde_json::from_slice(&l).unwrap());
        }
        (forwarded, errors)
    }

    #[tokio::test]
    async fn bad_lines_get_errors_with_their_ids_and_good_ones_pass() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n");
        input.extend_from_slice(b"not json\n\n");
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":7}\n");
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"q\":\"a\xffb\"}}}\n");
        input.extend_from_slice(
            b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":\"x\"}\n",
        );
        input.extend_from_slice(b"[1,2]\n");
        input
            .extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"no/such\"}");
        let (forwarded, errors) = run(&input).await;
        let ids: Vec<&Value> = forwarded.iter().map(|v| &v["id"]).collect();
        assert_eq!(ids, [&json!(1), &Value::Null, &json!(2)], "{forwarded:?}");
        let got: Vec<(Value, i64)> = errors
            .iter()
            .map(|e| (e["id"].clone(), e["error"]["code"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (Value::Null, -32700),
                (json!(7), -32600),
                (json!(8), -32700),
                (json!(9), -32600),
                (Value::Null, -32600)
            ],
            "{errors:?}"
        );
        assert!(errors
            .iter()
            .all(|e| e.as_object().unwrap().contains_key("id")));
    }
}
