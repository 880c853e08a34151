"""Team mode across real processes: two in-process `codemem serve` agent servers on one project
(same root, same home, CODEMEM_DAEMON=off) sharing a real redis-server and a real Qdrant server, both started here on free
ports. A missing `redis-server` or Qdrant binary ($CODEMEM_QDRANT_BIN, else ../shared/bin/qdrant)
fails the test; it never skips.

What one process does, the other sees: the second process gets its own data dir, the index is
built once, a memory written through one agent server is in the other's state (its memory
count, and `recall` returns the whole record) through Redis pub/sub, and a forget too."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from mcp_harness import REPO, HttpServer, Sandbox, http_session, text_of, wait_indexed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(what: str, ok, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not ready within {limit} s")


@pytest.fixture(scope="module")
def servers():
    redis_bin = shutil.which("redis-server")
    assert redis_bin, "redis-server is missing: `apt-get install -y redis-server` (.ci/run installs it)"
    qdrant_bin = Path(os.environ.get("CODEMEM_QDRANT_BIN") or REPO.parent / "shared" / "bin" / "qdrant")
    assert qdrant_bin.is_file(), f"the Qdrant server binary is missing at {qdrant_bin}; set CODEMEM_QDRANT_BIN"
    storage = Path(tempfile.mkdtemp(prefix="codemem-qdrant-"))
    rport, hport, gport = free_port(), free_port(), free_port()
    procs = [
        subprocess.Popen(
            [redis_bin, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [str(qdrant_bin)],
            cwd=storage,
            env={
                **os.environ,
                "QDRANT__SERVICE__HTTP_PORT": str(hport),
                "QDRANT__SERVICE__GRPC_PORT": str(gport),
                "QDRANT__STORAGE__STORAGE_PATH": str(storage / "storage"),
                "QDRANT__STORAGE__SNAPSHOTS_PATH": str(storage / "snapshots"),
                "QDRANT__TELEMETRY_DISABLED": "true",
                "QDRANT__LOG_LEVEL": "WARN",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]

    def qdrant_ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{hport}/readyz", timeout=1) as r:
                return r.status == 200 and accepts(gport)
        except OSError:
            return False

    try:
        wait_until("redis-server", lambda: accepts(rport))
        wait_until("the Qdrant server", qdrant_ready)
        yield f"redis://127.0.0.1:{rport}", f"http://127.0.0.1:{gport}"
    finally:
        for p in procs:
            p.kill()
            p.wait(30)
        shutil.rmtree(storage, ignore_errors=True)


async def status_of(session) -> dict:
    r = await session.call_tool("index_status", {})
    assert not r.is_error, text_of(r)
    return r.structured_content


async def poll(what: str, check, limit: float = 15.0):
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        ok, last = await check()
        if ok:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not seen within {limit} s; last: {last}")


def test_two_agent_servers_on_one_project_share_index_and_memories(servers):
    redis_url, qdrant_url = servers
    sb = Sandbox("team", f'[backends]\nredis_url = "{redis_url}"\nqdrant_url = "{qdrant_url}"\n')
    # Two in-process servers (CODEMEM_DAEMON=off), as on two machines: on one machine both would
    # attach to the same daemon and share one endpoint (tests/mcp/test_daemon.py).
    a = HttpServer(sb, env=sb.env(CODEMEM_DAEMON="off"))
    b = HttpServer(sb, env=sb.env(CODEMEM_DAEMON="off"))

    async def run() -> None:
        async with http_session(a.url, a.headers()) as sa, http_session(b.url, b.headers()) as sb_:
            st_a = await wait_indexed(sa.call_tool)
            st_b = await wait_indexed(sb_.call_tool)
            ra, rb = st_a["roots"][0], st_b["roots"][0]
            assert ra["data_dir"] != rb["data_dir"], "each live process has its own local data dir"
            assert ra["files_indexed"] == rb["files_indexed"] > 0
            team = [x for x in st_b["backends"] if x["name"] == "team state"]
            assert team and team[0]["healthy"], st_b["backends"]
            # Both indexed the same tree at start-up; the lease let only one of them embed it.
            runs = sorted([ra["last_run"] or {}, rb["last_run"] or {}], key=lambda s: s.get("chunks_embedded", 0))
            assert runs[0].get("chunks_embedded", 0) == 0, runs

            before = rb["memories"]
            r = await sa.call_tool(
                "remember",
                {"text": "Refunds over 500 EUR need a second approver; see the finance runbook.", "namespace": "shared", "tags": ["team"]},
            )
            assert not r.is_error, text_of(r)
            mid = r.structured_content["id"]

            async def b_has_it():
                st = await status_of(sb_)
                return st["roots"][0]["memories"] == before + 1, st["roots"][0]["memories"]

            await poll("B's memory count after A's remember", b_has_it)
            r = await sb_.call_tool("recall", {"query": "who approves large refunds", "tags": ["team"]})
            assert not r.is_error, text_of(r)
            got = [(h.get("memory") or {}) for h in r.structured_content["hits"]]
            assert any(m.get("id") == mid and "second approver" in m.get("text", "") for m in got), text_of(r)

            r = await sa.call_tool("forget", {"id": mid})
            assert not r.is_error, text_of(r)

            async def b_forgot():
                st = await status_of(sb_)
                return st["roots"][0]["memories"] == before, st["roots"][0]["memories"]

            await poll("B's memory count after A's forget", b_forgot)

    try:
        asyncio.run(run())
    finally:
        codes = (a.stop(), b.stop())
        errs = a.stderr_path.read_text() + b.stderr_path.read_text()
        sb.cleanup()
        assert codes == (0, 0), f"codemem serve exit codes {codes}:\n{errs}"
