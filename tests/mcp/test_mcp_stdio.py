"""MCP over stdio (`codemem mcp`): every tool through `ClientSession` and `Client`, the raw
protocol (stdout carries JSON-RPC only, an unknown first request), durability across kill -9,
and cancelling a reindex."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import threading
import time

import anyio
import pytest
from mcp import Client

from mcp_harness import TOOLS, Sandbox, codemem_bin, stdio_params, stdio_session, text_of, wait_indexed


@pytest.fixture(scope="module")
def sb():
    s = Sandbox("stdio")
    yield s
    s.cleanup()


class RawServer:
    """`codemem mcp` driven line by line; every stdout line must be a JSON-RPC message."""

    def __init__(self, sb: Sandbox) -> None:
        self.err = open(sb.dir / f"raw-{time.monotonic_ns()}.err", "w")
        self.proc = subprocess.Popen(
            [str(codemem_bin()), "--root", str(sb.root), "mcp"],
            env=sb.env(),
            cwd=str(sb.dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, msg: dict) -> None:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def send_bytes(self, line: bytes) -> None:
        """One raw line, exactly these bytes (plus the newline)."""
        self.proc.stdin.flush()
        self.proc.stdin.buffer.write(line + b"\n")
        self.proc.stdin.buffer.flush()

    def recv_where(self, pred, what: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            msg = json.loads(line)  # anything but JSON on stdout fails here
            assert msg.get("jsonrpc") == "2.0", line
            if pred(msg):
                return msg
        raise AssertionError(f"no {what} within {timeout} s")

    def recv(self, want_id, timeout: float = 120) -> dict:
        return self.recv_where(lambda m: m.get("id") == want_id, f"response to request {want_id}", timeout)

    def recv_error(self, want_id, timeout: float = 20) -> dict:
        """The error answering `want_id`; a reply must carry the id (`null` when unreadable)."""
        return self.recv_where(
            lambda m: "error" in m and "id" in m and m["id"] == want_id, f"error with \"id\": {json.dumps(want_id)}", timeout
        )

    def request(self, id_, method: str, params: dict | None = None) -> dict:
        self.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}})
        return self.recv(id_)

    def initialize(self) -> dict:
        r = self.request(1, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r

    def call(self, id_, tool: str, args: dict) -> dict:
        return self.request(id_, "tools/call", {"name": tool, "arguments": args})

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.err.close()

    def close(self) -> int:
        self.proc.stdin.close()
        code = self.proc.wait(60)
        self.err.close()
        return code


@pytest.mark.asyncio
async def test_every_tool_over_stdio_with_the_low_level_session(sb):
    async with stdio_session(sb) as s:
        assert {t.name for t in (await s.list_tools()).tools} == TOOLS
        await wait_indexed(s.call_tool)
        r = await s.call_tool("search_code", {"query": "exponential backoff between retries"})
        assert not r.is_error and "pkg/httpclient/retry.go" in [h["path"] for h in r.structured_content["hits"][:3]], text_of(r)
        r = await s.call_tool("find_symbol", {"name": "debounce"})
        assert not r.is_error and r.structured_content["matches"][0]["path"] == "web/src/utils/debounce.ts", text_of(r)
        r = await s.call_tool("remember", {"text": "Deploys go through scripts/deploy.sh only.", "namespace": "documentation", "path": "scripts/deploy.sh"})
        assert not r.is_error, text_of(r)
        mid = r.structured_content["id"]
        r = await s.call_tool("recall", {"query": "how do we deploy"})
        assert mid in [(h.get("memory") or {}).get("id") for h in r.structured_content["hits"]], text_of(r)
        assert not (await s.call_tool("forget", {"id": mid})).is_error
        assert (await s.call_tool("index_status", {})).structured_content["state"] == "ready"
        assert "shared" in text_of(await s.call_tool("list_namespaces", {}))
        progress = []

        async def on_progress(p, total, message):
            progress.append(p)

        r = await s.call_tool("reindex", {}, progress_callback=on_progress)
        assert not r.is_error and progress and progress[-1] == 100.0, (text_of(r), progress)
        r = await s.call_tool("search_code", {"query": "x", "namespaces": ["nope"]})
        assert r.is_error and "unknown namespace" in text_of(r)
    audit = sb.audit()
    assert [(a["token"], a["tool"], a["ok"]) for a in audit[-3:]] == [("stdio", "remember", True), ("stdio", "forget", True), ("stdio", "reindex", True)]


@pytest.mark.asyncio
async def test_high_level_client_over_stdio(sb):
    """The high-level `Client` sends `server/discover` first; it gets "method not found" (or the
    supported versions) and initializes on the same connection."""
    async with Client(stdio_params(sb)) as c:
        assert c.protocol_version == "2025-11-25"
        assert c.server_info.name == "codemem"
        r = await c.call_tool("search_code", {"query": "LruCache eviction"})
        assert not r.is_error and r.structured_content["hits"], text_of(r)
        r = await c.call_tool("find_symbol", {"name": "Matrix", "kind": "class"})
        assert not r.is_error, text_of(r)
        r = await c.call_tool("remember", {"text": "Matrix is row-major.", "namespace": "coding", "path": "native/linalg/matrix.hpp"})
        mid = r.structured_content["id"]
        assert mid in text_of(await c.call_tool("recall", {"query": "matrix memory layout"}))
        assert not (await c.call_tool("forget", {"id": mid})).is_error
        assert not (await c.call_tool("index_status", {})).is_error
        assert not (await c.call_tool("list_namespaces", {})).is_error
        assert not (await c.call_tool("reindex", {"path": "native"})).is_error


def test_raw_protocol_unknown_first_request_and_clean_stdout(sb):
    srv = RawServer(sb)
    try:
        r = srv.request(0, "server/discover", {})
        assert r["error"]["code"] in (-32601, -32602), r
        meta = {
            "io.modelcontextprotocol/protocolVersion": "2025-11-25",
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        r = srv.request("d", "server/discover", {"_meta": meta})
        assert r["error"]["code"] == -32601, r
        r = srv.initialize()
        assert r["result"]["serverInfo"]["name"] == "codemem" and "tools" in r["result"]["capabilities"]
        r = srv.request(2, "tools/list")
        assert {t["name"] for t in r["result"]["tools"]} == TOOLS
        r = srv.request(3, "no/such/method")
        assert r["error"]["code"] == -32601, r
        r = srv.call(4, "search_code", {"query": "ring buffer overflow"})
        assert r["result"].get("isError") is False and r["result"]["structuredContent"]["hits"], r
        r = srv.call(5, "search_code", {"query": ["not", "a", "string"]})
        assert r["result"]["isError"] is True and "invalid type" in r["result"]["content"][0]["text"], r
    finally:
        assert srv.close() == 0


def test_malformed_lines_get_json_rpc_errors_and_the_session_goes_on(sb):
    """JSON-RPC over stdio: not JSON → -32700 with id null; an object that is no request →
    -32600 with its id; invalid UTF-8 inside a string → an error carrying the id (read
    leniently), never silence that leaves the client waiting."""
    srv = RawServer(sb)
    try:
        srv.initialize()
        srv.send_bytes(b"this is not json")
        r = srv.recv_error(None)
        assert r["error"]["code"] == -32700, r
        srv.send_bytes(b'{"jsonrpc":"2.0","id":7}')
        r = srv.recv_error(7)
        assert r["error"]["code"] == -32600, r
        srv.send_bytes(b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"search_code","arguments":{"query":"bad \xff byte"}}}')
        r = srv.recv_error(8)
        assert r["error"]["code"] in (-32700, -32600) and "UTF-8" in r["error"]["message"], r
        srv.send_bytes(b'{"jsonrpc":"2.0","id":"s9","method":"tools/call","params":"not an object"}')
        assert srv.recv_error("s9")["error"]["code"] == -32600
        r = srv.call(10, "search_code", {"query": "ring buffer overflow"})
        assert r["result"].get("isError") is False, r
    finally:
        assert srv.close() == 0


def test_remember_survives_kill_9(sb):
    srv = RawServer(sb)
    srv.initialize()
    r = srv.call(2, "remember", {"text": "The pricefeed retries are capped at five attempts (kill -9 test).", "namespace": "shared", "tags": ["durable"]})
    assert r["result"]["isError"] is False, r
    mid = r["result"]["structuredContent"]["id"]
    srv.kill9()  # no chance to flush anything after the reply

    srv = RawServer(sb)
    try:
        srv.initialize()
        r = srv.call(2, "recall", {"query": "pricefeed retry cap", "tags": ["durable"]})
        ids = [(h.get("memory") or {}).get("id") for h in r["result"]["structuredContent"]["hits"]]
        assert mid in ids, r
        assert srv.call(3, "forget", {"id": mid})["result"]["isError"] is False
    finally:
        srv.close()


@pytest.mark.asyncio
async def test_reindex_can_be_cancelled_and_the_session_keeps_working():
    fresh = Sandbox("cancel")  # nothing indexed yet: the run takes seconds
    try:
        async with stdio_session(fresh) as s:
            progress: list[str] = []
            first = anyio.Event()

            async def on_progress(p, total, message):
                progress.append(message or "")
                first.set()

            async def run():
                await s.call_tool("reindex", {}, progress_callback=on_progress)

            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                with anyio.fail_after(120):
                    await first.wait()
                tg.cancel_scope.cancel()  # the SDK sends notifications/cancelled
            # The server stopped the run and says so in the audit log.
            deadline = time.monotonic() + 60
            while not any(a["tool"] == "reindex" for a in fresh.audit()) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            rec = [a for a in fresh.audit() if a["tool"] == "reindex"]
            assert rec and rec[-1]["ok"] is False and rec[-1].get("error") == "cancelled", (rec, progress)
            # Same session, still serving; the next run resumes and completes.
            r = await s.call_tool("search_code", {"query": "token bucket"})
            assert not r.is_error, text_of(r)
            r = await s.call_tool("reindex", {})
            assert not r.is_error and not r.structured_content["cancelled"], text_of(r)
            await wait_indexed(s.call_tool)
    finally:
        fresh.cleanup()
