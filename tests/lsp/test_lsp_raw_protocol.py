"""Malformed JSON-RPC written as raw bytes to `codemem lsp`'s stdin (no client library in the
way). Every case must get a spec-conforming error (or be skipped over), the server must keep
answering the next request, and stdout must carry well-formed LSP frames and nothing else."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lsp_harness import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    LEXICAL,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    FrameError,
    codemem_bin,
    make_home,
    server_env,
    tempdir,
    uri,
)

SERVER_NOT_INITIALIZED = -32002
WAIT = 60.0


class RawServer:
    def __init__(self, workspace: Path, home: Path):
        self.proc = subprocess.Popen(
            [str(codemem_bin()), "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=server_env(home),
            cwd=str(home),
        )
        self.workspace = workspace
        self.stdout = bytearray()
        self.messages: "queue.Queue[dict]" = queue.Queue()
        self.frame_error: Exception | None = None
        self.stderr = bytearray()
        self.next_id = 1000
        self.unclaimed: list[dict] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self):
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):
            self.stderr += chunk

    def _read_stdout(self):
        """Strict incremental frame parser over everything the server writes."""
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                break
            self.stdout += chunk
            buf += chunk
            while True:
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    break
                headers = buf[:head_end].split(b"\r\n")
                length = None
                try:
                    for h in headers:
                        name, _, value = h.partition(b":")
                        name = name.strip().lower()
                        if name == b"content-length":
                            length = int(value.strip())
                        elif name != b"content-type":
                            raise FrameError(f"unexpected header {h[:200]!r}")
                    if length is None:
                        raise FrameError(f"frame without Content-Length: {buf[:200]!r}")
                except (ValueError, FrameError) as e:
                    self.frame_error = e
                    return
                if len(buf) < head_end + 4 + length:
                    break
                body = buf[head_end + 4 : head_end + 4 + length]
                buf = buf[head_end + 4 + length :]
                try:
                    msg = json.loads(body.decode("utf-8"))
                    assert isinstance(msg, dict) and msg.get("jsonrpc") == "2.0", msg
                except Exception as e:  # noqa: BLE001
                    self.frame_error = FrameError(f"bad frame body ({e}): {body[:300]!r}")
                    return
                self._on_message(msg)
            if buf and not buf.startswith(b"Content-"):
                self.frame_error = FrameError(f"stdout bytes outside a frame: {buf[:200]!r}")
                return

    def _on_message(self, msg: dict):
        if "method" in msg and "id" in msg:
            # A server → client request (registerCapability, ...): answer like an editor would.
            self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            return
        self.messages.put(msg)

    # -- writing
    def write(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send_body(self, body: bytes):
        self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send(self, obj: dict):
        self.send_body(json.dumps(obj).encode())

    # -- reading
    def response(self, msg_id, timeout: float = WAIT) -> dict:
        """The response with this id (id None: an error response with id null); a tuple of
        ids: the first response with any of them."""
        ids = msg_id if isinstance(msg_id, tuple) else (msg_id,)
        for i, held in enumerate(self.unclaimed):
            if held.get("id") in ids:
                return self.unclaimed.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no response with id {msg_id!r} within {timeout}s; stderr:\n{self.stderr_text()}")
            try:
                msg = self.messages.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if "method" in msg:
                continue  # notifications: codemem/status, $/progress, window/logMessage
            if msg.get("id") in ids:
                return msg
            self.unclaimed.append(msg)  # responses may come in any order

    def request(self, method: str, params=None, timeout: float = WAIT) -> dict:
        self.next_id += 1
        mid = self.next_id
        self.send({"jsonrpc": "2.0", "id": mid, "method": method, "params": params})
        return self.response(mid, timeout)

    def drain(self) -> list[dict]:
        """Forgets messages left over from earlier cases (e.g. extra parse errors)."""
        out, self.unclaimed = self.unclaimed, []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def check_alive(self):
        assert self.frame_error is None, f"stdout is not pure LSP: {self.frame_error}"
        code = self.proc.poll()
        assert code is None, f"server exited with {code}; stderr:\n{self.stderr_text()}"

    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")[-4000:]

    def assert_answers(self):
        """The server still works: a real request gets a real answer."""
        r = self.request("codemem/search", {"query": "kestrel_wingspan_ratio"})
        assert "result" in r, r
        assert any(h["uri"].endswith("birds.py") for h in r["result"]["hits"]), r

    def close(self) -> int:
        try:
            if self.proc.poll() is None:
                r = self.request("shutdown", None)
                assert r.get("result", "missing") is None, r
                self.send({"jsonrpc": "2.0", "method": "exit"})
                return self.proc.wait(timeout=WAIT)
            return self.proc.returncode
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def birds_workspace(d: Path) -> Path:
    ws = d / "birds"
    ws.mkdir()
    (ws / "birds.py").write_text(
        "def kestrel_wingspan_ratio(span_cm, body_cm):\n    return span_cm / body_cm\n\n\n"
        "def falcon_dive_speed(height_m):\n    return (2 * 9.81 * height_m) ** 0.5\n"
    )
    return ws


def initialize(srv: RawServer) -> None:
    ws = srv.workspace
    r = srv.request(
        "initialize",
        {"processId": None, "rootUri": uri(ws), "capabilities": {}, "initializationOptions": LEXICAL,
         "workspaceFolders": [{"uri": uri(ws), "name": ws.name}]},
    )
    assert "result" in r and "capabilities" in r["result"], r
    srv.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})


@pytest.fixture
def raw():
    """One server per case (a tiny lexical workspace starts in well under a second), so one
    fatal case cannot hide the others."""
    d = tempdir("raw")
    srv = RawServer(birds_workspace(d), make_home(d))
    try:
        initialize(srv)
        deadline = time.monotonic() + 120
        while True:  # wait until the tiny workspace is searchable
            r = srv.request("codemem/search", {"query": "kestrel_wingspan_ratio"})
            if r.get("result", {}).get("hits"):
                break
            assert time.monotonic() < deadline, f"workspace never indexed: {r}"
            time.sleep(0.2)
        yield srv
        assert srv.frame_error is None, f"stdout is not pure LSP: {srv.frame_error}"
        assert b"panicked" not in srv.stderr, srv.stderr_text()
        if srv.proc.poll() is None:  # (a server that died has already failed its test)
            code = srv.close()
            assert code == 0, f"shutdown + exit ends with 0, got {code}; stderr:\n{srv.stderr_text()}"
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


def test_requests_before_initialize_are_refused():
    """LSP: before initialize, requests get ServerNotInitialized (-32002) and notifications
    are dropped; initialize then works normally."""
    d = tempdir("raw-uninit")
    srv = RawServer(birds_workspace(d), make_home(d))
    try:
        srv.send({"jsonrpc": "2.0", "id": 1, "method": "codemem/search", "params": {"query": "x"}})
        r = srv.response(1)
        assert (r.get("error") or {}).get("code") == SERVER_NOT_INITIALIZED, r
        srv.send({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": "file:///x"}}})
        initialize(srv)
        assert srv.close() == 0
        assert srv.frame_error is None, srv.frame_error
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


@pytest.fixture(autouse=True)
def fresh(raw):
    raw.drain()
    raw.check_alive()


def error_of(r: dict) -> int | None:
    return (r.get("error") or {}).get("code")


def test_invalid_json_is_a_parse_error(raw):
    raw.send_body(b'{"jsonrpc":"2.0","id":11,"method":"codemem/search","params":{"query":')
    r = raw.response(None)
    assert error_of(r) == PARSE_ERROR, r
    raw.assert_answers()


def test_invalid_escape_is_a_parse_error(raw):
    raw.send_body(rb'{"jsonrpc":"2.0","id":12,"method":"codemem/search","params":{"query":"bad \q escape"}}')
    r = raw.response(None)
    assert error_of(r) == PARSE_ERROR, r
    raw.assert_answers()


def test_lone_surrogate_is_an_error(raw):
    raw.send_body(rb'{"jsonrpc":"2.0","id":13,"method":"codemem/search","params":{"query":"\ud800 falcon"}}')
    # serde_json refuses lone surrogates while parsing: a parse error (id unknown → null).
    # Answering InvalidParams for request 13 is conforming too.
    r = raw.response((13, None))
    assert error_of(r) in (PARSE_ERROR, INVALID_PARAMS), r
    raw.assert_answers()


def test_invalid_utf8_is_an_error(raw):
    raw.send_body(b'{"jsonrpc":"2.0","id":14,"method":"codemem/search","params":{"query":"\xff\xfe falcon"}}')
    r = raw.response((14, None))
    assert error_of(r) in (PARSE_ERROR, INVALID_PARAMS), r
    raw.assert_answers()


def test_non_numeric_content_length_is_skipped(raw):
    raw.write(b"Content-Length: abc\r\n\r\n" + b'{"jsonrpc":"2.0","method":"initialized","params":{}}')
    raw.assert_answers()


def test_missing_content_length_is_skipped(raw):
    raw.write(b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" + b'{"jsonrpc":"2.0","id":15,"method":"shutdown"}')
    raw.assert_answers()
    raw.check_alive()  # the unframed "shutdown" must not have been obeyed...
    r = raw.request("codemem/search", {"query": "falcon_dive_speed"})
    assert "result" in r, f"...or later requests would be refused: {r}"


def test_content_length_shorter_than_the_body(raw):
    body = b'{"jsonrpc":"2.0","id":16,"method":"codemem/search","params":{"query":"falcon"}}'
    raw.write(b"Content-Length: 20\r\n\r\n" + body)
    raw.assert_answers()


def test_missing_method_is_an_invalid_request(raw):
    raw.send({"jsonrpc": "2.0", "id": 17, "params": {"query": "falcon"}})
    r = raw.response((17, None))
    assert error_of(r) == INVALID_REQUEST, r
    raw.assert_answers()


def test_method_of_the_wrong_type_is_an_invalid_request(raw):
    raw.send({"jsonrpc": "2.0", "id": 18, "method": 42, "params": {}})
    r = raw.response((18, None))
    assert error_of(r) == INVALID_REQUEST, r
    raw.assert_answers()


def test_wrong_params_type_is_invalid_params(raw):
    raw.send({"jsonrpc": "2.0", "id": 19, "method": "textDocument/hover", "params": "oops"})
    assert error_of(raw.response(19)) == INVALID_PARAMS
    raw.send({"jsonrpc": "2.0", "id": 20, "method": "codemem/search", "params": [1, 2]})
    assert error_of(raw.response(20)) == INVALID_PARAMS
    raw.assert_answers()


def test_unknown_method_is_method_not_found(raw):
    r = raw.request("codemem/noSuchRequest", {"x": 1})
    assert error_of(r) == METHOD_NOT_FOUND, r
    r = raw.request("textDocument/noSuchFeature", {})
    assert error_of(r) == METHOD_NOT_FOUND, r
    # Unknown notifications, including $/ ones, are ignored without an answer.
    raw.send({"jsonrpc": "2.0", "method": "codemem/noSuchNotification", "params": {}})
    raw.send({"jsonrpc": "2.0", "method": "$/noSuchThing", "params": {}})
    raw.assert_answers()


def test_string_ids_are_echoed(raw):
    raw.send({"jsonrpc": "2.0", "id": "req-α", "method": "codemem/search", "params": {"query": "falcon_dive_speed"}})
    r = raw.response("req-α")
    assert "result" in r and r["result"]["hits"], r


def test_split_writes_and_back_to_back_frames(raw):
    """A frame split across writes, and several frames in one write, are both read correctly."""
    a = json.dumps({"jsonrpc": "2.0", "id": 21, "method": "codemem/search", "params": {"query": "falcon_dive_speed"}}).encode()
    b = json.dumps({"jsonrpc": "2.0", "id": 22, "method": "codemem/search", "params": {"query": "kestrel"}}).encode()
    frame_a = b"Content-Length: %d\r\n\r\n" % len(a) + a
    raw.write(frame_a[:7])
    time.sleep(0.2)
    raw.write(frame_a[7:30])
    time.sleep(0.2)
    raw.write(frame_a[30:] + b"Content-Length: %d\r\n\r\n" % len(b) + b)
    assert "result" in raw.response(21)
    assert "result" in raw.response(22)
