"""Harness for the MCP suites: runs the real `codemem` binary (`codemem mcp` over stdio,
`codemem serve` over streamable HTTP) and talks to it with the official Python SDK.

* `codemem_bin()`: the binary under test ($CODEMEM_BIN, else target/release/codemem).
* `Sandbox`: a temporary CODEMEM_HOME (runtime/ and models/ symlinked to the installed assets;
  missing assets fail the test, never skip it) plus a copy of tests/fixtures/polyglot.
* `HttpServer`: a `codemem serve --port 0` process; `.url`, `.token`, `.stop()`, `.kill()`.
* `stdio_params()`: StdioServerParameters for `codemem mcp` in a sandbox.
* `http_session()` / `stdio_session()`: initialized low-level `ClientSession`s.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator

import httpx2 as httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

# The temporary CODEMEM_HOME and the binary under test come from the LSP harness (tests/lsp).
from lsp_harness import DAEMON_IDLE_SECS, codemem_bin, make_home  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"

# A hang is a bug: waits below fail the test after this long.
INDEX_TIMEOUT = 300.0
START_TIMEOUT = 60.0

READER_TOKEN = "reader-token-0123456789abcdef"
TESTER_TOKEN = "tester-token-0123456789abcdef"
SCOPED_CONFIG = f"""
[[mcp.token]]
name = "reader"
token = "{READER_TOKEN}"
access = "read"

[[mcp.token]]
name = "tester"
token = "{TESTER_TOKEN}"
namespaces = ["testing"]
access = "write"
"""

TOOLS = {
    "search_code",
    "get_context",
    "find_symbol",
    "find_references",
    "callers",
    "callees",
    "recall",
    "remember",
    "forget",
    "index_status",
    "reindex",
    "list_namespaces",
}


class Sandbox:
    """A temporary codemem home and a copy of the polyglot fixture as the workspace."""

    def __init__(self, name: str, config: str = "") -> None:
        # No leading dot anywhere in the path: the walker skips hidden entries.
        self.dir = Path(tempfile.mkdtemp(prefix=f"codemem-mcp-{name}-")).resolve()
        self.home = make_home(self.dir)
        self.root = self.dir / "polyglot"
        shutil.copytree(FIXTURES / "polyglot", self.root)
        if config:
            (self.root / "codemem.toml").write_text(config)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODEMEM_")}
        env["CODEMEM_HOME"] = str(self.home)
        env["CODEMEM_DAEMON_IDLE_SECS"] = DAEMON_IDLE_SECS
        env.update(extra)
        return env

    def token(self) -> str:
        out = subprocess.run(
            [str(codemem_bin()), "token"], env=self.env(), capture_output=True, text=True, timeout=60, check=True
        )
        return out.stdout.strip()

    def audit(self) -> list[dict[str, Any]]:
        p = self.home / "audit.log"
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines()]

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def stdio_params(sb: Sandbox) -> StdioServerParameters:
    return StdioServerParameters(
        command=str(codemem_bin()), args=["--root", str(sb.root), "mcp"], env=sb.env(), cwd=str(sb.dir)
    )


class HttpServer:
    """`codemem serve --port 0` in a sandbox; reads the URL from the first stdout line."""

    def __init__(self, sb: Sandbox, *args: str, env: dict[str, str] | None = None) -> None:
        self.sb = sb
        self.stderr_path = sb.dir / f"serve-{time.monotonic_ns()}.err"
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [str(codemem_bin()), "--root", str(sb.root), "serve", "--port", "0", *args],
            env=env or sb.env(),
            cwd=str(sb.dir),
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        url = line[0].strip() if line else ""
        if not url.startswith("http://"):
            self.kill()
            raise AssertionError(f"codemem serve printed no URL: {url!r}; stderr:\n{self.stderr()}")
        self.url = url
        self.token = sb.token()

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_text()

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("codemem serve did not stop within 30 s of SIGTERM")
        self._err.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._err.close()


@contextlib.asynccontextmanager
async def http_session(url: str, headers: dict[str, str], roots: list[Path] | None = None) -> AsyncIterator[ClientSession]:
    """An MCP SDK session over streamable HTTP; with `roots`, the client offers them as its MCP roots."""
    callback = None
    if roots is not None:
        from mcp import types
        from pydantic import FileUrl

        async def callback(_ctx):  # noqa: ANN001 - the SDK's RequestContext
            return types.ListRootsResult(roots=[types.Root(uri=FileUrl(p.as_uri()), name=p.name) for p in roots])

    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(60.0, read=300.0)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write, list_roots_callback=callback) as session:
                await session.initialize()
                yield session


@contextlib.asynccontextmanager
async def stdio_session(sb: Sandbox) -> AsyncIterator[ClientSession]:
    errlog = open(sb.dir / f"mcp-{time.monotonic_ns()}.err", "w")
    try:
        async with stdio_client(stdio_params(sb), errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session
    finally:
        errlog.close()


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def wait_indexed(call) -> dict[str, Any]:
    """Polls index_status through `call(name, args)` until every root is indexed and embedded."""
    deadline = time.monotonic() + INDEX_TIMEOUT
    last: Any = None
    while time.monotonic() < deadline:
        r = await call("index_status", {})
        assert not r.is_error, text_of(r)
        last = r.structured_content
        roots = last["roots"]
        if last["state"] == "ready" and roots and all(x["pending_files"] == 0 and x["files_indexed"] > 0 for x in roots):
            return last
        import asyncio

        await asyncio.sleep(0.5)
    raise AssertionError(f"index not ready after {INDEX_TIMEOUT} s: {json.dumps(last)[:2000]}")
