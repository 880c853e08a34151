#!/usr/bin/env python3
"""LSP benchmark: `codemem lsp` driven over stdio with plain JSON-RPC (stdlib only).

Measures, through the real protocol:
  * while a cold workspace indexes: latency of codemem/search (lexical) and workspace/symbol
    requests sent every 50 ms (target: no request blocked > 50 ms);
  * after indexing: codemem/search (hybrid) and workspace/symbol p50/p99;
  * didChange -> searchable: an edit inserts a new uniquely named function into an open buffer
    (not saved); time until codemem/search returns it as unsaved, lexically (target p50 < 300 ms,
    p99 < 1 s) and semantically (dense mode, target < 2 s).
Prints a table and writes a JSON report. Not a test: exit status 0 whatever the figures.
"""

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Lsp:
    def __init__(self, binary, home, log):
        env = dict(os.environ, CODEMEM_HOME=str(home))
        self.p = subprocess.Popen([binary, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        self.q = {}
        self.notes = queue.Queue()
        self.lock = threading.Lock()
        self.next = 0
        self.waiters = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.p.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                c = out.read(1)
                if not c:
                    return
                header += c
            n = next(int(l.split(b":")[1]) for l in header.split(b"\r\n") if l.lower().startswith(b"content-length"))
            msg = json.loads(out.read(n))
            if "method" in msg and "id" in msg:  # server -> client request: accept
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif "method" in msg:
                self.notes.put(msg)
            else:
                w = self.waiters.pop(msg["id"], None)
                if w:
                    w.put(msg)

    def send(self, msg):
        body = json.dumps(msg).encode()
        with self.lock:
            self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.p.stdin.flush()

    def request(self, method, params, timeout=600):
        with self.lock:
            self.next += 1
            i = self.next
        w = queue.Queue()
        self.waiters[i] = w
        t = time.perf_counter()
        self.send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        msg = w.get(timeout=timeout)
        return msg, (time.perf_counter() - t) * 1000

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})


QUERIES = [
    "parse a JSON number", "serialize a map", "error with line and column", "read a table from the database",
    "commit a write transaction", "open the database file", "escape a string", "pretty print with indentation",
    "iterate over range of keys", "free page allocation", "deserialize from a reader", "savepoint restore",
]
SYMBOLS = ["Deserializer", "from_str", "to_string", "Database", "WriteTransaction", "Value", "parse", "Error"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="workspace folder to open (it is not modified)")
    ap.add_argument("--bin", default=str(Path(__file__).resolve().parent.parent / "target/release/codemem"))
    ap.add_argument("--assets-home", required=True, help="CODEMEM_HOME where scripts/setup installed runtime/ and models/")
    ap.add_argument("--edits", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--json", help="write the report here")
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="codemem-bench-lsp-"))
    home = tmp / "home"
    home.mkdir()
    for d in ("runtime", "models"):
        (home / d).symlink_to(Path(a.assets_home) / d)
    corpus = Path(a.corpus).resolve()
    log = open(tmp / "lsp.log", "w")
    lsp = Lsp(a.bin, home, log)
    uri = corpus.as_uri()
    t0 = time.perf_counter()
    lsp.request("initialize", {
        "processId": os.getpid(), "rootUri": uri, "workspaceFolders": [{"uri": uri, "name": corpus.name}],
        "capabilities": {"window": {"workDoneProgress": True}}, "initializationOptions": {"mcp": {"enabled": False}},
    })
    lsp.notify("initialized", {})

    # Phase 1: requests while the cold index runs.
    during = {"search": [], "hybrid": [], "symbol": [], "errors": 0}
    ready = threading.Event()

    def watch():
        while not ready.is_set():
            try:
                n = lsp.notes.get(timeout=0.5)
            except queue.Empty:
                continue
            if n["method"] == "codemem/status" and n["params"].get("state") == "ready" and time.perf_counter() - t0 > 1:
                ready.set()
    threading.Thread(target=watch, daemon=True).start()
    i = 0
    while not ready.is_set():
        i += 1
        m, ms = lsp.request("codemem/search", {"query": QUERIES[i % len(QUERIES)], "k": 10, "mode": "lexical"})
        if "error" in m and "no workspace folder" not in m["error"]["message"]:
            during["errors"] += 1
        elif "result" in m:
            during["search"].append(ms)
        m, ms = lsp.request("codemem/search", {"query": QUERIES[i % len(QUERIES)], "k": 10})
        during["hybrid"].append(ms) if "result" in m else None
        m, ms = lsp.request("workspace/symbol", {"query": SYMBOLS[i % len(SYMBOLS)]})
        during["symbol"].append(ms) if "result" in m else None
        time.sleep(0.05)
    index_s = time.perf_counter() - t0

    # Phase 2: steady state.
    search, symbol = [], []
    for _ in range(a.rounds):
        for q in QUERIES:
            _, ms = lsp.request("codemem/search", {"query": q, "k": 10})
            search.append(ms)
        for s in SYMBOLS:
            _, ms = lsp.request("workspace/symbol", {"query": s})
            symbol.append(ms)

    # Phase 3: edits -> searchable.
    target = max((p for p in corpus.rglob("*.rs") if p.stat().st_size < 100_000), key=lambda p: p.stat().st_size)
    text = target.read_text()
    furi = target.as_uri()
    lsp.notify("textDocument/didOpen", {"textDocument": {"uri": furi, "languageId": "rust", "version": 1, "text": text}})
    line = text.count("\n")
    lexical, dense = [], []
    for e in range(a.edits):
        name = f"bench_inserted_fn_{e}_{int(time.time() * 1000) % 100000}"
        sentence = f"computes the zebra quokka checksum number {e} for the bench"
        body = f"\n/// {sentence}\npub fn {name}(x: u64) -> u64 {{\n    x.wrapping_mul({e + 3})\n}}\n"
        lsp.notify("textDocument/didChange", {"textDocument": {"uri": furi, "version": e + 2},
                                               "contentChanges": [{"range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}}, "text": body}]})
        line += body.count("\n")
        sent = time.perf_counter()
        found_lex = found_dense = None
        while found_lex is None or found_dense is None:
            if time.perf_counter() - sent > 10:
                break
            if found_lex is None:
                m, _ = lsp.request("codemem/search", {"query": name, "k": 3, "mode": "lexical"})
                if any(h["unsaved"] and h["symbol"] and name in h["symbol"] for h in m.get("result", {}).get("hits", [])):
                    found_lex = (time.perf_counter() - sent) * 1000
            if found_dense is None:
                m, _ = lsp.request("codemem/search", {"query": sentence, "k": 3, "mode": "dense"})
                if any(h["unsaved"] and name in h["snippet"] for h in m.get("result", {}).get("hits", [])):
                    found_dense = (time.perf_counter() - sent) * 1000
            time.sleep(0.005)
        lexical.append(found_lex if found_lex is not None else float("inf"))
        dense.append(found_dense if found_dense is not None else float("inf"))
    lsp.notify("textDocument/didClose", {"textDocument": {"uri": furi}})
    lsp.request("shutdown", None)
    lsp.notify("exit", None)
    lsp.p.wait(timeout=30)

    def row(name, xs, target=""):
        print(f"  {name:<44} p50 {pct(xs, 50):8.1f} ms   p99 {pct(xs, 99):8.1f} ms   max {max(xs) if xs else float('nan'):8.1f} ms   n={len(xs):<5} {target}")

    load = os.getloadavg()
    print(f"\nLSP benchmark — {corpus} (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
    print(f"  cold open to ready: {index_s:.1f} s")
    row("during indexing: codemem/search (lexical)", during["search"], "target: max < 50 ms")
    row("during indexing: codemem/search (hybrid)", during["hybrid"])
    row("during indexing: workspace/symbol", during["symbol"], "target: max < 50 ms")
    print(f"  during indexing: errors {during['errors']}")
    row("indexed: codemem/search (hybrid)", search, "target: p50 < 20 ms")
    row("indexed: workspace/symbol", symbol)
    row("didChange -> searchable (lexical)", lexical, "target: p50 < 300 ms, p99 < 1 s")
    row("didChange -> searchable (dense)", dense, "target: < 2 s")
    report = {
        "corpus": str(corpus), "load": load, "cold_open_to_ready_s": index_s,
        "during_indexing": {k: (v if isinstance(v, int) else {"p50": pct(v, 50), "p99": pct(v, 99), "max": max(v) if v else None, "n": len(v)}) for k, v in during.items()},
        "search_hybrid": {"p50": pct(search, 50), "p99": pct(search, 99)},
        "workspace_symbol": {"p50": pct(symbol, 50), "p99": pct(symbol, 99)},
        "edit_to_lexical": {"p50": pct(lexical, 50), "p99": pct(lexical, 99)},
        "edit_to_dense": {"p50": pct(dense, 50), "p99": pct(dense, 99)},
    }
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))
        print(f"  JSON report: {a.json}")


if __name__ == "__main__":
    main()
