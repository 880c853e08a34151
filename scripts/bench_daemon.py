#!/usr/bin/env python3
"""Daemon benchmark (`scripts/bench --only daemon`): what a front end pays with a warm per-user
daemon against the in-process mode, on a real corpus.

1. Indexes the corpus cold in process (`codemem --no-daemon index`) under a throwaway home.
2. Starts `codemem daemon run`, warms it with one search, then times whole `codemem search`
   processes (CLI through the daemon), `search_code` over `codemem mcp` (stdio relay) and
   `codemem/search` over `codemem lsp` (stdio relay), and reads the daemon's idle RSS.
3. Stops the daemon and times whole `codemem --no-daemon search` processes (load model + open
   shards every time), for the ratio.

Prints p50/p99 per figure and the targets; writes a JSON report. A benchmark, not a test."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

QUERIES = [
    "serialize a map with string keys",
    "how is a transaction committed",
    "parse a number from a string",
    "read only transaction",
    "error when the key is missing",
    "pretty print with indentation",
    "btree page split",
    "deserialize an enum variant",
]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def lsp_frame(obj: dict) -> bytes:
    body = json.dumps(obj).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def read_lsp(stream) -> dict:
    length = 0
    while True:
        line = stream.readline()
        if not line:
            raise EOFError("codemem lsp closed stdout")
        if line in (b"\r\n", b"\n"):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(stream.read(length))


def lsp_until(stream, want_id) -> dict:
    while True:
        m = read_lsp(stream)
        if m.get("id") == want_id and "method" not in m:
            return m


def soak(binary: str, root: Path, env: dict, seconds: int) -> dict:
    """Two `codemem lsp` (one editing an unsaved buffer), two `codemem mcp` and a terminal running
    `codemem search`, all on one project through the daemon, for `seconds`."""
    import threading

    stop = time.monotonic() + seconds
    counts = {"requests": 0, "errors": 0, "exits": 0}
    lock = threading.Lock()

    def count(ok: bool) -> None:
        with lock:
            counts["requests"] += 1
            counts["errors"] += 0 if ok else 1

    def lsp_client(n: int) -> None:
        p = subprocess.Popen([binary, "lsp"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        send = lambda m: (p.stdin.write(lsp_frame(m)), p.stdin.flush())
        send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"processId": None, "capabilities": {}, "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}], "initializationOptions": {"mcp": {"enabled": False}}}})
        lsp_until(p.stdout, 0)
        send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        doc = (root / f"soak_unsaved_{n}.py").as_uri()
        send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": doc, "languageId": "python", "version": 1, "text": "def soak_start():\n    pass\n"}}})
        i, version = 0, 1
        while time.monotonic() < stop:
            i += 1
            if n == 0 and i % 3 == 0:
                version += 1
                send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": doc, "version": version}, "contentChanges": [{"text": f"def soak_edit_{version}():\n    return {version}\n"}]}})
            send({"jsonrpc": "2.0", "id": i, "method": "codemem/search", "params": {"query": QUERIES[i % len(QUERIES)]}})
            r = lsp_until(p.stdout, i)
            # Right after start the folder may still be opening in this session.
            count("result" in r or "no workspace folder" in json.dumps(r))
        send({"jsonrpc": "2.0", "id": 10**6, "method": "shutdown"})
        lsp_until(p.stdout, 10**6)
        send({"jsonrpc": "2.0", "method": "exit"})
        with lock:
            counts["exits"] += 0 if p.wait(60) == 0 else 1

    def mcp_client(n: int) -> None:
        p = subprocess.Popen([binary, "--root", str(root), "mcp"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        send = lambda m: (p.stdin.write((json.dumps(m) + "\n").encode()), p.stdin.flush())
        send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "soak", "version": "1"}}})
        json.loads(p.stdout.readline())
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        i = 0
        while time.monotonic() < stop:
            i += 1
            tool = ["search_code", "find_symbol", "index_status", "recall"][i % 4]
            args = {"search_code": {"query": QUERIES[i % len(QUERIES)]}, "find_symbol": {"name": "soak_start"},
                    "index_status": {}, "recall": {"query": "soak"}}[tool]
            if n == 0 and i % 25 == 0:
                tool, args = "remember", {"text": f"soak note {i}", "namespace": "shared"}
            send({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": tool, "arguments": args}})
            r = json.loads(p.stdout.readline())
            count("result" in r and not r["result"].get("isError"))
        p.stdin.close()
        with lock:
            counts["exits"] += 0 if p.wait(60) == 0 else 1

    def terminal() -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            out = subprocess.run([binary, "--root", str(root), "search", QUERIES[i % len(QUERIES)], "--json"], env=env, capture_output=True)
            count(out.returncode == 0)

    threads = [threading.Thread(target=lsp_client, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=mcp_client, args=(n,)) for n in range(2)]
    threads.append(threading.Thread(target=terminal))
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True, action="append",
                    help="a project to index and open in the daemon (repeat: latency is measured on the first; "
                         "idle RSS with all of them open)")
    ap.add_argument("--assets-home", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--json", required=True)
    ap.add_argument("--soak", type=int, default=0, help="also run 5 front ends (2 LSP, 2 MCP stdio, CLI) for N seconds")
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="codemem-bench-daemon-"))
    home = work / "home"
    home.mkdir()
    for sub in ("runtime", "models"):
        os.symlink(Path(a.assets_home) / sub, home / sub)
    roots = [Path(c).resolve() for c in a.corpus]
    root = roots[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEMEM_")}
    env.update(CODEMEM_HOME=str(home), CODEMEM_DAEMON_IDLE_SECS="3600")
    run = lambda *args, **kw: subprocess.run([a.bin, "--root", str(root), *args], env=env, capture_output=True, text=True, **kw)
    report: dict = {"corpus": str(root)}
    try:
        t = time.monotonic()
        out = run("--no-daemon", "index", "--json")
        assert out.returncode == 0, out.stderr
        report["cold_index_s"] = round(time.monotonic() - t, 1)
        for other in roots[1:]:
            out = subprocess.run([a.bin, "--root", str(other), "--no-daemon", "index", "--json"], env=env, capture_output=True, text=True)
            assert out.returncode == 0, out.stderr

        daemon = subprocess.Popen([a.bin, "daemon", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while run("daemon", "status").returncode != 0:
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.1)
        assert run("search", QUERIES[0]).returncode == 0  # opens the project, loads the model
        for other in roots[1:]:  # the other projects are open in the daemon too
            out = subprocess.run([a.bin, "--root", str(other), "search", QUERIES[1]], env=env, capture_output=True, text=True)
            assert out.returncode == 0, out.stderr

        cli = []
        for i in range(a.runs):
            t = time.monotonic()
            out = run("search", QUERIES[i % len(QUERIES)], "--json")
            cli.append((time.monotonic() - t) * 1000)
            assert out.returncode == 0, out.stderr

        # MCP over stdio, through the relay.
        mcp = subprocess.Popen([a.bin, "--root", str(root), "mcp"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        send = lambda m: (mcp.stdin.write((json.dumps(m) + "\n").encode()), mcp.stdin.flush())
        send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        json.loads(mcp.stdout.readline())
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        mcp_ms = []
        for i in range(a.runs + 2):
            t = time.monotonic()
            send({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": {"name": "search_code", "arguments": {"query": QUERIES[i % len(QUERIES)]}}})
            r = json.loads(mcp.stdout.readline())
            assert "result" in r and not r["result"].get("isError"), r
            if i >= 2:
                mcp_ms.append((time.monotonic() - t) * 1000)
        mcp.stdin.close()
        mcp.wait(30)

        # LSP over stdio, through the relay.
        lsp = subprocess.Popen([a.bin, "lsp"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lsend = lambda m: (lsp.stdin.write(lsp_frame(m)), lsp.stdin.flush())
        lsend({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"processId": None, "rootUri": root.as_uri(), "capabilities": {}, "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}], "initializationOptions": {"mcp": {"enabled": False}}}})
        lsp_until(lsp.stdout, 0)
        lsend({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        lsp_ms = []
        for i in range(a.runs + 5):
            t = time.monotonic()
            lsend({"jsonrpc": "2.0", "id": i + 1, "method": "codemem/search", "params": {"query": QUERIES[i % len(QUERIES)]}})
            r = lsp_until(lsp.stdout, i + 1)
            if "error" in r:  # the folder is still opening in this session
                time.sleep(0.1)
                continue
            lsp_ms.append((time.monotonic() - t) * 1000)
        lsend({"jsonrpc": "2.0", "id": 9999, "method": "shutdown"})
        lsp_until(lsp.stdout, 9999)
        lsend({"jsonrpc": "2.0", "method": "exit"})
        lsp.wait(30)

        if a.soak:
            report["soak"] = soak(a.bin, root, env, a.soak)
            s = report["soak"]
            print(f"soak: 5 front ends for {a.soak} s: {s['requests']} requests, {s['errors']} errors, "
                  f"{s['exits']} unexpected exits (target 0 / 0)")

        time.sleep(2)
        st = json.loads(run("daemon", "status", "--json").stdout)
        report["daemon_idle_rss_mib"] = st["rss_mib"]
        report["projects_open"] = len(st["projects"])
        run("daemon", "stop")
        daemon.wait(60)

        inproc = []
        for i in range(max(5, a.runs // 4)):
            t = time.monotonic()
            out = run("--no-daemon", "search", QUERIES[i % len(QUERIES)], "--json")
            inproc.append((time.monotonic() - t) * 1000)
            assert out.returncode == 0, out.stderr

        figures = {
            "cli_search_daemon_ms": cli,
            "mcp_stdio_search_code_ms": mcp_ms,
            "lsp_codemem_search_ms": lsp_ms,
            "cli_search_in_process_ms": inproc,
        }
        targets = {"cli_search_daemon_ms": 50, "mcp_stdio_search_code_ms": 20, "lsp_codemem_search_ms": 20}
        print(f"daemon benchmark on {root} (cold in-process index {report['cold_index_s']} s)")
        print(f"{'figure':32} {'p50 ms':>9} {'p99 ms':>9}  target")
        for k, xs in figures.items():
            report[k] = {"p50": round(statistics.median(xs), 2), "p99": round(pct(xs, 99), 2), "n": len(xs)}
            tgt = targets.get(k)
            mark = "" if tgt is None else (f"p50 < {tgt} ms " + ("PASS" if statistics.median(xs) < tgt else "FAIL"))
            print(f"{k:32} {report[k]['p50']:9.1f} {report[k]['p99']:9.1f}  {mark}")
        ratio = statistics.median(inproc) / statistics.median(cli)
        report["in_process_over_daemon"] = round(ratio, 1)
        print(f"in-process / daemon CLI search p50: {ratio:.1f}x")
        rss = report["daemon_idle_rss_mib"]
        print(f"daemon idle RSS after indexing, {report['projects_open']} project(s) open: {rss} MiB "
              f"(target < 300 MiB with 3 open: {'PASS' if rss and rss < 300 else 'FAIL'})")
        Path(a.json).write_text(json.dumps(report, indent=2))
    finally:
        subprocess.run([a.bin, "daemon", "stop"], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
