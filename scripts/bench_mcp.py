#!/usr/bin/env python3
"""MCP benchmark (scripts/bench --only mcp): `search_code` over streamable HTTP against the real
`codemem serve`, at 1 and 32 concurrent clients: p50/p99/mean latency, requests/s, errors.

Each client is a thread with its own keep-alive HTTP connection and its own MCP session
(initialize once, then tools/call in a loop), so the figures are the server's, not a client
SDK's. Standard library only. The corpus is indexed (and embedded) completely before timing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

QUERIES = [
    "how are errors reported to the caller",
    "parse a configuration file",
    "where is the cache invalidated",
    "iterate over directory entries recursively",
    "glob pattern matching",
    "serialize a value to a string",
    "Deserializer",
    "read the next token",
    "handle unicode escapes",
    "check whether a path is ignored",
    "thread pool for parallel work",
    "builder pattern with defaults",
]


def log(msg: str) -> None:
    print(f"bench-mcp: {msg}", file=sys.stderr, flush=True)


class Session:
    """One MCP session on one keep-alive connection."""

    def __init__(self, url: str, token: str) -> None:
        u = urlparse(url)
        self.path = u.path
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        self.next_id = 1
        r = self.rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
        assert "result" in r, r
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, msg: dict) -> tuple[int, str]:
        self.conn.request("POST", self.path, body=json.dumps(msg), headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read().decode()
        sid = resp.getheader("mcp-session-id")
        if sid:
            self.headers["Mcp-Session-Id"] = sid
        return resp.status, body

    def rpc(self, method: str, params: dict) -> dict:
        i = self.next_id
        self.next_id += 1
        status, body = self.post({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]}")
        for line in body.splitlines():
            if line.startswith("data:") and line[5:].strip():
                m = json.loads(line[5:])
                if m.get("id") == i:
                    return m
        if body.startswith("{"):
            return json.loads(body)
        raise RuntimeError(f"no response in {body[:200]!r}")

    def call(self, tool: str, args: dict) -> dict:
        r = self.rpc("tools/call", {"name": tool, "arguments": args})
        if "error" in r:
            raise RuntimeError(r["error"])
        return r["result"]


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def phase(url: str, token: str, clients: int, duration: float) -> dict:
    sessions = [Session(url, token) for _ in range(clients)]
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        s = sessions[i]
        start.wait()
        q = i
        while time.monotonic() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                r = s.call("search_code", {"query": QUERIES[q % len(QUERIES)], "k": 10})
                ok = not r.get("isError") and r["structuredContent"]["hits"]
            except Exception as e:  # noqa: BLE001 - every failure counts as an error
                log(f"client {i}: {e}")
                ok = False
            lat[i].append((time.perf_counter() - t0) * 1000)
            if not ok:
                errors[i] += 1
            q += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + duration
    t0 = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    all_lat = [x for xs in lat for x in xs]
    return {
        "clients": clients,
        "requests": len(all_lat),
        "errors": sum(errors),
        "seconds": round(wall, 2),
        "rps": round(len(all_lat) / wall, 1),
        "p50_ms": round(pct(all_lat, 50), 2),
        "p99_ms": round(pct(all_lat, 99), 2),
        "mean_ms": round(statistics.fmean(all_lat), 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--assets-home", required=True, type=Path)
    ap.add_argument("--bin", required=True, type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per phase (default 15)")
    ap.add_argument("--clients", default="1,32", help="comma-separated concurrency levels (default 1,32)")
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="codemem-bench-mcp-"))
    home = work / "home"
    home.mkdir()
    for sub in ("runtime", "models"):
        os.symlink(a.assets_home / sub, home / sub)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEMEM_")}
    env["CODEMEM_HOME"] = str(home)
    err = open(work / "serve.err", "w")
    proc = subprocess.Popen(
        [str(a.bin), "--root", str(a.corpus), "serve", "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=err, text=True
    )
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit(f"codemem serve printed no URL; see {work / 'serve.err'}")
        token = subprocess.run([str(a.bin), "token"], env=env, capture_output=True, text=True, check=True).stdout.strip()
        log(f"serving {a.corpus} at {url}; waiting for the index (cold, with embeddings)")
        s = Session(url, token)
        t0 = time.monotonic()
        while True:
            st = s.call("index_status", {})["structuredContent"]
            roots = st["roots"]
            if st["state"] == "ready" and roots and all(r["pending_files"] == 0 and r["files_indexed"] > 0 for r in roots):
                break
            if time.monotonic() - t0 > 3600:
                raise SystemExit("index not ready after an hour")
            time.sleep(1)
        files = sum(r["files_indexed"] for r in roots)
        points = sum(n["points"] for r in roots for n in r["namespaces"])
        log(f"indexed {files} files, {points} points in {time.monotonic() - t0:.0f} s")
        for q in QUERIES:  # warm-up: the model and the shards are loaded
            s.call("search_code", {"query": q})
        results = []
        for c in [int(x) for x in a.clients.split(",")]:
            log(f"{c} concurrent client(s) for {a.duration:.0f} s")
            results.append(phase(url, token, c, a.duration))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        err.close()

    load = os.getloadavg()
    print()
    print(f"MCP search_code over HTTP ({files} files, {points} points; load average {load[0]:.1f})")
    print(f"{'clients':>8} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for r in results:
        print(f"{r['clients']:>8} {r['requests']:>9} {r['errors']:>7} {r['rps']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['mean_ms']:>8}")
    one = next((r for r in results if r["clients"] == 1), None)
    many = next((r for r in results if r["clients"] == 32), None)
    if one:
        print(f"target p50 < 20 ms at 1 client: {'PASS' if one['p50_ms'] < 20 else 'FAIL'} ({one['p50_ms']} ms)")
    if many:
        ok = many["p99_ms"] < 250 and many["errors"] == 0
        print(f"target p99 < 250 ms, 0 errors at 32 clients: {'PASS' if ok else 'FAIL'} ({many['p99_ms']} ms, {many['errors']} errors)")
    if one and many:
        print(
            f"32 vs 1 client: p50 x{many['p50_ms'] / one['p50_ms']:.1f}, p99 x{many['p99_ms'] / one['p99_ms']:.1f}, "
            f"throughput x{many['rps'] / one['rps']:.2f}"
        )
    if a.json:
        a.json.write_text(json.dumps({"files": files, "points": points, "load": load, "phases": results}, indent=2))
        print(f"JSON report: {a.json}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
