"""MCP over streamable HTTP (`codemem serve`): every tool through the low-level
`ClientSession` and the high-level `Client`, authentication and scopes, limits, concurrency."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import httpx2 as httpx
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from mcp_harness import (
    READER_TOKEN,
    SCOPED_CONFIG,
    TESTER_TOKEN,
    TOOLS,
    HttpServer,
    Sandbox,
    codemem_bin,
    http_session,
    text_of,
)

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def post(server: HttpServer, body, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(timeout=30) as c:
        return c.post(server.url, content=body if isinstance(body, (bytes, str)) else json.dumps(body), headers={**ACCEPT, **headers})


def sse_json(resp: httpx.Response) -> dict:
    """The JSON-RPC message in a response (SSE `data:` line or plain JSON)."""
    if resp.headers.get("content-type", "").startswith("application/json"):
        return resp.json()
    for line in resp.text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            return json.loads(line[5:])
    raise AssertionError(f"no JSON-RPC message in {resp.status_code} {resp.text!r}")


# --------------------------------------------------------------------------- tools


@pytest.mark.asyncio
async def test_tools_are_listed_with_schemas_and_descriptions(served):
    async with http_session(served.url, served.headers()) as s:
        listed = (await s.list_tools()).tools
    by_name = {t.name: t for t in listed}
    assert set(by_name) == TOOLS
    for t in listed:
        assert t.description and len(t.description) > 60, t.name
        assert t.input_schema["type"] == "object", t.name
    assert by_name["search_code"].input_schema["required"] == ["query"]
    assert set(by_name["remember"].input_schema["required"]) == {"text", "namespace"}
    assert by_name["forget"].input_schema["required"] == ["id"]
    assert by_name["search_code"].annotations.read_only_hint is True
    assert by_name["forget"].annotations.destructive_hint is True


@pytest.mark.asyncio
async def test_every_tool_with_the_low_level_session(served):
    async with http_session(served.url, served.headers()) as s:
        r = await s.call_tool("search_code", {"query": "token bucket rate limiting per client"})
        assert not r.is_error, text_of(r)
        paths = [h["path"] for h in r.structured_content["hits"]]
        assert "src/ratelimit.rs" in paths[:3], paths
        assert "freshness" in r.structured_content and "src/ratelimit.rs" in text_of(r)

        r = await s.call_tool("search_code", {"query": "retry", "path": "pkg/**", "language": "go", "k": 3})
        assert not r.is_error, text_of(r)
        hits = r.structured_content["hits"]
        assert hits and len(hits) <= 3 and all(h["path"].startswith("pkg/") and h["language"] == "go" for h in hits)

        r = await s.call_tool("find_symbol", {"name": "TokenBucket"})
        assert not r.is_error, text_of(r)
        first = r.structured_content["matches"][0]
        assert (first["name"], first["path"], first["exact"]) == ("TokenBucket", "src/ratelimit.rs", True)
        r = await s.call_tool("find_symbol", {"name": "lrucache", "kind": "class"})
        assert not r.is_error and r.structured_content["matches"][0]["name"] == "LruCache", text_of(r)

        r = await s.call_tool(
            "remember",
            {
                "text": "Invoices are rounded half-even per line item, never on the total.",
                "namespace": "shared",
                "tags": ["billing", "decision"],
                "path": "billing/invoice.py",
                "symbol": "Invoice",
            },
        )
        assert not r.is_error, text_of(r)
        mid = r.structured_content["id"]
        assert mid.startswith("mem_") and mid in text_of(r)

        r = await s.call_tool("recall", {"query": "how are invoice amounts rounded", "tags": ["billing"]})
        assert not r.is_error, text_of(r)
        hits = r.structured_content["hits"]
        assert hits[0]["memory"]["id"] == mid and hits[0]["memory"]["path"] == "billing/invoice.py"

        r = await s.call_tool("forget", {"id": mid})
        assert not r.is_error and r.structured_content["removed"] is True, text_of(r)
        r = await s.call_tool("recall", {"query": "how are invoice amounts rounded", "tags": ["billing"]})
        assert all((h.get("memory") or {}).get("id") != mid for h in r.structured_content["hits"])
        r = await s.call_tool("forget", {"id": mid})
        assert r.is_error and "no memory" in text_of(r)

        r = await s.call_tool("index_status", {})
        assert not r.is_error, text_of(r)
        st = r.structured_content
        assert st["state"] == "ready" and st["roots"][0]["files_indexed"] >= 30
        assert {n["name"] for n in st["roots"][0]["namespaces"]} >= {"coding", "testing", "documentation"}
        assert st["backends"] and "files indexed" in text_of(r)

        r = await s.call_tool("list_namespaces", {})
        assert not r.is_error, text_of(r)
        names = {n["name"] for n in r.structured_content["namespaces"]}
        assert names >= {"coding", "architecture", "documentation", "testing", "shared"}

        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(p, total, message):
            progress.append((p, total, message))

        r = await s.call_tool("reindex", {"path": "src"}, progress_callback=on_progress)
        assert not r.is_error, text_of(r)
        assert r.structured_content["runs"][0]["files_scanned"] >= 30
        assert progress and progress[-1][0] == 100.0, progress
        assert [p for p, _, _ in progress] == sorted(p for p, _, _ in progress)


def token_bound(text: str) -> int:
    """The count the server states (`token_count`): ceil(ASCII bytes / 3) + 1 per byte of other text."""
    ascii_n = sum(1 for c in text if ord(c) < 128)
    other = sum(len(c.encode()) for c in text if ord(c) >= 128)
    return -(-ascii_n // 3) + other


@pytest.mark.asyncio
async def test_get_context_fits_its_budget_and_says_what_it_left_out(served):
    async with http_session(served.url, served.headers()) as s:
        for budget in (200, 600, 4000):
            r = await s.call_tool("get_context", {"query": "token bucket rate limiting per client", "budget_tokens": budget})
            assert not r.is_error, text_of(r)
            sc = r.structured_content
            text = text_of(r)
            assert sc["budget_tokens"] == budget and sc["tokens_used"] <= budget, sc
            assert token_bound(text) == sc["tokens_used"] <= budget, (budget, token_bound(text), sc["tokens_used"])
            assert "ceil(ASCII bytes / 3)" in sc["token_count"]
            pieces = sc["pieces"]
            assert pieces and all("text" not in p for p in pieces), pieces  # the text is the answer's text
            for p in pieces:
                assert f"## {p['path']}:{p['start_line']}-{p['end_line']}" in text, (p, text[:300])
            if sc["omitted"] or any(p["cut"] for p in pieces):
                assert sc["more"] and "budget_tokens" in text
        # At 4000 tokens the implementation is in the bundle, whole.
        assert any(p["path"] == "src/ratelimit.rs" for p in pieces), pieces
        # A tight budget leaves things out and lists them with ranges to read.
        r = await s.call_tool("get_context", {"query": "token bucket rate limiting per client", "budget_tokens": 200})
        assert r.structured_content["omitted"] and "Left out" in text_of(r)
        # Bad budgets and empty questions say what to send.
        for args, says in [({"query": "x", "budget_tokens": 50}, "between 200 and 100000"),
                           ({"query": "  "}, "empty"), ({"query": "x", "path": "../**"}, "contains `..`")]:
            r = await s.call_tool("get_context", args)
            assert r.is_error and says in text_of(r), (args, text_of(r))
    # Context about a symbol, or about the definition around a line, instead of a question.
    async with http_session(served.url, served.headers()) as s:
        r = await s.call_tool("get_context", {"symbol": "TokenBucket", "budget_tokens": 1000})
        assert not r.is_error, text_of(r)
        assert r.structured_content["pieces"][0]["path"] == "src/ratelimit.rs", r.structured_content
        src = (served.sb.root / "src/ratelimit.rs").read_text().splitlines()
        line = next(i for i, l in enumerate(src, 1) if "fn try_acquire" in l) + 1
        r = await s.call_tool("get_context", {"location": {"path": "src/ratelimit.rs", "line": line}, "budget_tokens": 1000})
        assert not r.is_error, text_of(r)
        assert r.structured_content["pieces"][0]["path"] == "src/ratelimit.rs", r.structured_content
        for args, says in [({"query": "x", "symbol": "TokenBucket"}, "exactly one"),
                           ({"location": {"path": "src/ratelimit.rs", "line": 1}}, "no definition encloses"),
                           ({"location": {"path": "../etc/passwd", "line": 1}}, "outside")]:
            r = await s.call_tool("get_context", args)
            assert r.is_error and says in text_of(r), (args, text_of(r))
    # The CLI gives the same bundle (through the daemon that serves this endpoint).
    out = subprocess.run([str(codemem_bin()), "--root", str(served.sb.root), "context", "token bucket rate limiting per client",
                          "--budget", "600", "--json"], env=served.sb.env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    b = json.loads(out.stdout)
    assert b["tokens_used"] <= 600 and b["pieces"] and all(p["text"] for p in b["pieces"]), b


@pytest.mark.asyncio
async def test_search_and_recall_fit_max_tokens(served):
    """search_code and recall take the same max_tokens as get_context's budget: fewer, cut hits."""
    async with http_session(served.url, served.headers()) as s:
        full = await s.call_tool("search_code", {"query": "token bucket rate limiting per client", "k": 20})
        r = await s.call_tool("search_code", {"query": "token bucket rate limiting per client", "k": 20, "max_tokens": 200})
        assert not r.is_error, text_of(r)
        hits = r.structured_content["hits"]
        assert hits and len(hits) < len(full.structured_content["hits"]), (len(hits), text_of(r))
        assert sum(30 + token_bound(h["snippet"]) for h in hits) <= 200, hits
        assert r.structured_content["omitted_hits"] > 0 and "left out to fit max_tokens" in text_of(r)
        assert hits[0]["path"] == full.structured_content["hits"][0]["path"]
        r = await s.call_tool("recall", {"query": "how do we deploy", "max_tokens": 200})
        assert not r.is_error, text_of(r)
        assert sum(30 + token_bound(h["hit"]["snippet"]) for h in r.structured_content["hits"]) <= 200
        for tool, args in [("search_code", {"query": "x", "max_tokens": 50}), ("recall", {"query": "x", "max_tokens": 100001})]:
            r = await s.call_tool(tool, args)
            assert r.is_error and "max_tokens must be between 200 and 100000" in text_of(r), text_of(r)


@pytest.mark.asyncio
async def test_references_callers_and_callees(served):
    """The reference graph through the SDK, the CLI and a scoped token."""
    async with http_session(served.url, served.headers()) as s:
        r = await s.call_tool("find_references", {"name": "debounce", "path": "web/src/utils/debounce.ts"})
        assert not r.is_error, text_of(r)
        sc = r.structured_content
        assert [d["path"] for d in sc["definitions"]] == ["web/src/utils/debounce.ts"], sc
        sites = {(x["path"], x["line"], x["call"]) for x in sc["references"]}
        assert ("web/src/components/SearchBox.tsx", 2, False) in sites, sites  # the import
        assert ("web/src/components/SearchBox.tsx", 12, True) in sites, sites
        assert ("web/src/utils/debounce.test.ts", 10, True) in sites, sites
        assert not any(x["line"] == 9 and x["path"].endswith("SearchBox.tsx") for x in sc["references"]), "a comment is no use"
        assert "web/src/components/SearchBox.tsx:12" in text_of(r)
        r = await s.call_tool("callers", {"name": "debounce", "path": "web/src/utils/debounce.ts"})
        callers = r.structured_content["references"]
        assert callers and all(x["call"] for x in callers), text_of(r)
        assert {x["caller"] for x in callers if x["path"].endswith("SearchBox.tsx")} == {"SearchBox"}, callers
        r = await s.call_tool("callees", {"name": "hash_password"})
        assert not r.is_error, text_of(r)
        assert r.structured_content["definition"]["path"] == "auth/passwords.py", r.structured_content
        assert r.structured_content["callees"], text_of(r)
        # Bad input says what to send.
        for args, says in [({"name": "a b"}, "not an identifier"), ({"name": "debounce", "path": "../x.ts"}, "outside"),
                           ({"name": "debounce", "limit": 0}, "limit must be"), ({"name": "debounce", "line": 3}, "line needs path")]:
            r = await s.call_tool("find_references", args)
            assert r.is_error and says in text_of(r), (args, text_of(r))
    # A token limited to `testing` sees only test files' uses.
    async with http_session(served.url, served.headers(TESTER_TOKEN)) as s:
        r = await s.call_tool("find_references", {"name": "debounce"})
        assert not r.is_error, text_of(r)
        paths = {x["path"] for x in r.structured_content["references"]}
        assert paths == {"web/src/utils/debounce.test.ts"}, paths
        assert "SearchBox" not in text_of(r)
    # The CLI answers the same (through the daemon that serves this endpoint).
    out = subprocess.run([str(codemem_bin()), "--root", str(served.sb.root), "refs", "debounce", "--path",
                          "web/src/utils/debounce.ts", "--callers", "--json"], env=served.sb.env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["references"] == callers


@pytest.mark.asyncio
async def test_every_tool_with_the_high_level_client(served):
    """`Client` probes `server/discover` first; the server answers "method not found" and the
    client falls back to `initialize` on the same endpoint."""
    async with httpx.AsyncClient(headers=served.headers(), timeout=60) as hc:
        async with Client(streamable_http_client(served.url, http_client=hc)) as c:
            assert c.protocol_version == "2025-11-25"
            assert {t.name for t in (await c.list_tools()).tools} == TOOLS
            r = await c.call_tool("search_code", {"query": "hash passwords with pbkdf2"})
            assert not r.is_error and "auth/passwords.py" in [h["path"] for h in r.structured_content["hits"][:3]]
            r = await c.call_tool("find_symbol", {"name": "RingBuffer"})
            assert not r.is_error and r.structured_content["matches"], text_of(r)
            r = await c.call_tool("remember", {"text": "The UART logger drops bytes when the ring is full.", "namespace": "architecture"})
            assert not r.is_error, text_of(r)
            mid = r.structured_content["id"]
            r = await c.call_tool("recall", {"query": "what happens when the uart ring buffer is full", "namespaces": ["architecture"]})
            assert mid in [(h.get("memory") or {}).get("id") for h in r.structured_content["hits"]], text_of(r)
            assert not (await c.call_tool("forget", {"id": mid})).is_error
            assert not (await c.call_tool("index_status", {})).is_error
            assert not (await c.call_tool("list_namespaces", {})).is_error
            assert not (await c.call_tool("reindex", {})).is_error


@pytest.mark.asyncio
async def test_server_discover_is_method_not_found_and_the_endpoint_stays_usable(served):
    discover = {"jsonrpc": "2.0", "id": 7, "method": "server/discover", "params": {}}
    r = post(served, discover, served.headers())
    msg = sse_json(r)
    assert msg["error"]["code"] in (-32601, -32602), msg  # method not found (or malformed probe)
    discover["params"] = {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    }
    r = post(served, discover, {**served.headers(), "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"})
    # A modern-only probe learns which (handshake) versions are supported ...
    assert sse_json(r)["error"]["code"] == -32022 and "2025-11-25" in r.text, r.text
    # ... and a probe at a version this server speaks is "method not found".
    for k in ("io.modelcontextprotocol/protocolVersion",):
        discover["params"]["_meta"][k] = "2025-11-25"
    r = post(served, discover, {**served.headers(), "MCP-Protocol-Version": "2025-11-25", "Mcp-Method": "server/discover"})
    assert sse_json(r)["error"]["code"] == -32601, r.text
    r = post(served, INIT, served.headers())
    assert r.status_code == 200 and sse_json(r)["result"]["serverInfo"]["name"] == "codemem"


# --------------------------------------------------------------------------- security


@pytest.mark.asyncio
async def test_requests_without_or_with_a_wrong_token_get_401(served):
    r = post(served, INIT, {})
    assert r.status_code == 401 and "codemem token" in r.text
    assert r.headers["www-authenticate"].lower().startswith("bearer")
    r = post(served, INIT, {"Authorization": "Bearer wrong-wrong-wrong-wrong"})
    assert r.status_code == 401 and "wrong bearer token" in r.text
    r = post(served, INIT, {"Authorization": served.token})  # no scheme
    assert r.status_code == 401
    with pytest.raises(Exception):
        async with http_session(served.url, {}) as s:
            await s.list_tools()
    assert post(served, INIT, served.headers()).status_code == 200


@pytest.mark.asyncio
async def test_foreign_origin_and_host_are_refused(served):
    r = post(served, INIT, {**served.headers(), "Origin": "https://evil.example"})
    assert r.status_code == 403 and "allowed_origins" in r.text
    r = post(served, INIT, {**served.headers(), "Origin": "null"})
    assert r.status_code == 403
    r = post(served, INIT, {**served.headers(), "Host": "evil.example:9200"})
    assert r.status_code == 403 and "DNS-rebinding" in r.text
    r = post(served, INIT, {**served.headers(), "Host": "localhost.evil.example"})
    assert r.status_code == 403
    # Loopback origins and names are fine.
    port = served.url.split(":")[2].split("/")[0]
    r = post(served, INIT, {**served.headers(), "Origin": "http://localhost:3000", "Host": f"localhost:{port}"})
    assert r.status_code == 200, r.text


@pytest.mark.asyncio
async def test_read_only_token_cannot_write(served):
    before = len(served.sb.audit())
    async with http_session(served.url, served.headers(READER_TOKEN)) as s:
        r = await s.call_tool("search_code", {"query": "debounce"})
        assert not r.is_error, text_of(r)
        for tool, args in [
            ("remember", {"text": "should not be stored", "namespace": "shared"}),
            ("forget", {"id": "mem_0123456789abcdef"}),
            ("reindex", {}),
        ]:
            r = await s.call_tool(tool, args)
            assert r.is_error and "read-only" in text_of(r), (tool, text_of(r))
        r = await s.call_tool("recall", {"query": "should not be stored"})
        assert all("should not be stored" not in ((h.get("memory") or {}).get("text") or "") for h in r.structured_content["hits"])
        r = await s.call_tool("list_namespaces", {})
        assert "read only" in text_of(r)
    audit = served.sb.audit()[before:]
    assert [(a["token"], a["tool"], a["ok"]) for a in audit] == [
        ("reader", "remember", False),
        ("reader", "forget", False),
        ("reader", "reindex", False),
    ], audit


@pytest.mark.asyncio
async def test_namespace_scoped_token(served):
    async with http_session(served.url, served.headers(TESTER_TOKEN)) as s:
        r = await s.call_tool("search_code", {"query": "password hashing"})
        assert not r.is_error, text_of(r)
        hits = r.structured_content["hits"]
        assert hits and {h["namespace"] for h in hits} == {"testing"}, hits
        r = await s.call_tool("search_code", {"query": "password hashing", "namespaces": ["coding"]})
        assert r.is_error and "limited to: testing" in text_of(r)
        r = await s.call_tool("remember", {"text": "nope", "namespace": "coding"})
        assert r.is_error and "may not use namespace `coding`" in text_of(r)
        r = await s.call_tool("remember", {"text": "Invoice tests use fixed clocks.", "namespace": "testing"})
        assert not r.is_error, text_of(r)
        mid = r.structured_content["id"]
        r = await s.call_tool("recall", {"query": "invoice tests clocks"})
        assert r.structured_content["hits"] and {h["hit"]["namespace"] for h in r.structured_content["hits"]} == {"testing"}
        r = await s.call_tool("list_namespaces", {})
        assert [n["name"] for n in r.structured_content["namespaces"]] == ["testing"]
    audit = served.sb.audit()
    assert {"token": "tester", "tool": "remember", "namespace": "testing", "id": mid, "ok": True}.items() <= audit[-1].items()
    assert all(set(a) >= {"time", "token", "tool", "ok"} for a in audit)


@pytest.mark.asyncio
async def test_body_and_query_limits(served):
    big = json.dumps({**INIT, "params": {**INIT["params"], "pad": "x" * (2 * 1024 * 1024)}})
    r = post(served, big, served.headers())
    assert r.status_code == 413 and "max_body_bytes" in r.text
    async with http_session(served.url, served.headers()) as s:
        r = await s.call_tool("search_code", {"query": "x" * 9000})
        assert r.is_error and "limit is 8192 bytes" in text_of(r)
        r = await s.call_tool("remember", {"text": "y" * 20000, "namespace": "shared"})
        assert r.is_error and "KiB" in text_of(r) or "bytes" in text_of(r), text_of(r)
        r = await s.call_tool("search_code", {"query": "ok"})
        assert not r.is_error


@pytest.mark.asyncio
async def test_bad_arguments_are_tool_errors_that_say_what_to_do(served):
    cases = [
        ("search_code", {}, "missing field `query`"),
        ("search_code", {"query": 42}, "invalid type"),
        ("search_code", {"query": "x", "k": "ten"}, "invalid type"),
        ("search_code", {"query": "x", "bogus": 1}, "unknown field `bogus`"),
        ("search_code", {"query": "   "}, "empty"),
        ("search_code", {"query": "x", "k": 0}, "between 1 and 200"),
        ("search_code", {"query": "x", "namespaces": ["nope"]}, "unknown namespace `nope`"),
        ("search_code", {"query": "x", "namespaces": ["../etc"]}, "not a namespace"),
        ("search_code", {"query": "x", "language": "cobol"}, "unknown language"),
        ("search_code", {"query": "x", "path": "../**"}, "contains `..`"),
        ("search_code", {"query": "x", "path": "/etc/**"}, "outside the workspace"),
        ("find_symbol", {"name": ""}, "symbol name"),
        ("find_symbol", {"name": "x", "kind": "gizmo"}, "unknown kind"),
        ("remember", {"text": "x"}, "missing field `namespace`"),
        ("remember", {"text": "x", "namespace": "nope"}, "nope"),
        ("remember", {"text": "x", "namespace": "shared", "path": "/etc/passwd"}, "outside the workspace"),
        ("remember", {"text": "x", "namespace": "shared", "path": "../../etc/passwd"}, "contains `..`"),
        ("remember", {"text": "x", "namespace": "shared", "tags": ["bad tag!"]}, "tag"),
        ("forget", {"id": "../../x"}, "not a memory id"),
        ("forget", {}, "missing field `id`"),
        ("recall", {"query": "x", "k": 1000}, "between 1 and 200"),
        ("reindex", {"path": "/etc"}, "outside the workspace"),
        ("index_status", {"unexpected": True}, "unknown field"),
    ]
    async with http_session(served.url, served.headers()) as s:
        for tool, args, expected in cases:
            r = await s.call_tool(tool, args)
            assert r.is_error, (tool, args, text_of(r))
            assert expected in text_of(r), (tool, args, text_of(r))
        with pytest.raises(MCPError) as e:
            await s.call_tool("no_such_tool", {})
        assert "unknown tool" in str(e.value)
        # The session survives all of that.
        assert not (await s.call_tool("search_code", {"query": "debounce"})).is_error


@pytest.mark.asyncio
async def test_symlink_escaping_the_workspace_is_refused(served):
    link = served.sb.root / "escape"
    link.symlink_to("/etc")
    try:
        async with http_session(served.url, served.headers()) as s:
            r = await s.call_tool("remember", {"text": "x", "namespace": "shared", "path": "escape/passwd"})
            assert r.is_error and "outside the workspace" in text_of(r), text_of(r)
    finally:
        link.unlink()


@pytest.mark.asyncio
async def test_namespace_scoped_token_sees_no_other_namespace(served):
    """A token limited to `testing` finds no definitions, counts or run totals of other namespaces."""
    async with http_session(served.url, served.headers()) as s:
        full = await s.call_tool("find_symbol", {"name": "AccountRepository"})
        assert any(m["path"] == "auth/signup.py" for m in full.structured_content["matches"]), text_of(full)
        full_status = (await s.call_tool("index_status", {})).structured_content
    async with http_session(served.url, served.headers(TESTER_TOKEN)) as s:
        for name in ["AccountRepository", "hash_password", "PasswordHasher"]:
            r = await s.call_tool("find_symbol", {"name": name})
            assert not r.is_error, text_of(r)
            assert {m["namespace"] for m in r.structured_content["matches"]} <= {"testing"}, text_of(r)
            assert "coding" not in text_of(r) and "auth/signup.py" not in text_of(r), text_of(r)
        r = await s.call_tool("find_symbol", {"name": "test_old_hashes_need_rehash"})
        assert [m["path"] for m in r.structured_content["matches"]][:1] == ["tests/test_passwords.py"], text_of(r)
        r = await s.call_tool("index_status", {})
        assert not r.is_error, text_of(r)
        st = r.structured_content
        for root, whole in zip(st["roots"], full_status["roots"]):
            assert [n["name"] for n in root["namespaces"]] == ["testing"], root
            testing = next(n for n in whole["namespaces"] if n["name"] == "testing")
            assert root["files_indexed"] == testing["files"] < whole["files_indexed"], (root, whole)
            assert root["last_run"] is None
        for other in ["coding", "documentation", "architecture"]:
            assert f"  {other} " not in text_of(r), text_of(r)
        r = await s.call_tool("reindex", {})
        assert r.is_error and "limited to namespaces" in text_of(r), text_of(r)


def test_malformed_json_bodies_get_400_with_a_json_rpc_error(served):
    r = post(served, b'{"jsonrpc": "2.0", "id": 1, "method": ', served.headers())
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert body["jsonrpc"] == "2.0" and "id" in body and body["id"] is None and body["error"]["code"] == -32700, body
    r = post(served, {"jsonrpc": "2.0", "id": 7}, served.headers())
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert body["id"] == 7 and body["error"]["code"] == -32600, body
    r = post(served, b"[]", served.headers())
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600, r.text


@pytest.mark.asyncio
async def test_writes_refused_while_reading_arguments_are_audited(served):
    before = len(served.sb.audit())
    async with http_session(served.url, served.headers()) as s:
        for tool, args in [
            ("remember", {"text": 5, "namespace": "shared"}),
            ("forget", {"id": "mem_0123456789abcdef", "extra": 1}),
            ("reindex", {"path": ["not", "a", "string"]}),
        ]:
            r = await s.call_tool(tool, args)
            assert r.is_error and "invalid arguments" in text_of(r), (tool, text_of(r))
    audit = served.sb.audit()[before:]
    assert [(a["token"], a["tool"], a["ok"]) for a in audit] == [
        ("default", "remember", False),
        ("default", "forget", False),
        ("default", "reindex", False),
    ], audit
    assert all("invalid arguments" in a["error"] for a in audit), audit


def open_session(server: HttpServer, token: str) -> httpx.Response:
    """`initialize` by hand; the session id is in the `mcp-session-id` header of a 200."""
    return post(server, INIT, server.headers(token))


def in_session(session: str, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}


def test_a_session_belongs_to_the_token_that_created_it(served):
    r = open_session(served, served.token)
    assert r.status_code == 200, r.text
    sid = r.headers["mcp-session-id"]
    post(served, {"jsonrpc": "2.0", "method": "notifications/initialized"}, in_session(sid, served.token))
    list_tools = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    with httpx.Client(timeout=30) as c:
        # Another valid token can neither use, watch nor end it.
        r = post(served, list_tools, in_session(sid, READER_TOKEN))
        assert r.status_code == 404, (r.status_code, r.text)
        r = c.get(served.url, headers={**in_session(sid, READER_TOKEN), "Accept": "text/event-stream"})
        assert r.status_code == 404, (r.status_code, r.text)
        r = c.delete(served.url, headers=in_session(sid, READER_TOKEN))
        assert r.status_code == 404, (r.status_code, r.text)
        # Its owner still can.
        r = post(served, list_tools, in_session(sid, served.token))
        assert r.status_code == 200 and {t["name"] for t in sse_json(r)["result"]["tools"]} == TOOLS, r.text
        r = c.delete(served.url, headers=in_session(sid, served.token))
        assert r.status_code in (200, 202, 204), (r.status_code, r.text)
        r = post(served, list_tools, in_session(sid, served.token))
        assert r.status_code == 404, (r.status_code, r.text)


def test_live_sessions_per_token_are_capped():
    sb = Sandbox("sessions", "[mcp]\nmax_sessions_per_token = 3\n" + SCOPED_CONFIG)
    server = HttpServer(sb)
    try:
        sessions = []
        for _ in range(3):
            r = open_session(server, server.token)
            assert r.status_code == 200, r.text
            sessions.append(r.headers["mcp-session-id"])
        r = open_session(server, server.token)
        assert r.status_code == 429, (r.status_code, r.text)
        body = r.json()
        assert body["id"] == 1 and "max_sessions_per_token" in body["error"]["message"] and "DELETE" in body["error"]["message"], body
        # Other tokens have their own allowance.
        assert open_session(server, READER_TOKEN).status_code == 200
        # Closing one makes room again.
        with httpx.Client(timeout=30) as c:
            assert c.delete(server.url, headers=in_session(sessions[0], server.token)).status_code in (200, 202, 204)
        r = open_session(server, server.token)
        assert r.status_code == 200, r.text
    finally:
        code = server.stop()
        sb.cleanup()
    assert code == 0


# --------------------------------------------------------------------------- load


@pytest.mark.asyncio
async def test_32_concurrent_clients_search_while_reindex_runs(served):
    errors: list[str] = []
    done = 0
    queries = ["token bucket", "retry with backoff", "password hashing", "LruCache", "debounce", "ring buffer", "invoice total", "matrix multiply"]
    marker = "zqxjreindexmarker"
    touched = 0

    async def client(i: int) -> None:
        nonlocal done
        async with http_session(served.url, served.headers()) as s:
            for j in range(8):
                r = await s.call_tool("search_code", {"query": queries[(i + j) % len(queries)], "k": 5})
                if r.is_error or not r.structured_content["hits"]:
                    errors.append(text_of(r))
                done += 1

    async def reindex() -> dict:
        nonlocal touched
        async with http_session(served.url, served.headers()) as s:
            await asyncio.sleep(0.3)  # the searches are under way
            # Real work for the index: every source file changes.
            for p in sorted(served.sb.root.rglob("*")):
                if p.is_file() and p.suffix in {".rs", ".py", ".go", ".ts", ".tsx", ".js", ".java", ".c", ".cpp"}:
                    p.write_text(p.read_text() + f"\n// {marker} {p.stem}\n")
                    touched += 1
            r = await s.call_tool("reindex", {})
            assert not r.is_error, text_of(r)
            return r.structured_content

    started = time.monotonic()
    results = await asyncio.gather(reindex(), *[client(i) for i in range(32)], return_exceptions=True)
    elapsed = time.monotonic() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    assert not errors, errors[:3]
    assert done == 32 * 8
    # The changed files were re-indexed while the clients searched (by this reindex or by the
    # file watcher it coalesces with).
    async with http_session(served.url, served.headers()) as s:
        r = await s.call_tool("search_code", {"query": marker, "k": 50, "namespaces": ["coding", "testing"]})
        found = {h["path"] for h in r.structured_content["hits"]}
    assert touched >= 20 and len(found) >= touched * 0.9, (touched, sorted(found))
    print(f"32 clients x 8 searches while {touched} changed files were re-indexed: {elapsed:.1f} s, 0 errors")


# --------------------------------------------------------------------------- startup


def test_a_taken_port_is_a_clear_error():
    sb1, sb2 = Sandbox("port-a"), Sandbox("port-b")
    first = HttpServer(sb1)
    try:
        port = first.url.split(":")[2].split("/")[0]
        out = subprocess.run(
            [str(codemem_bin()), "--root", str(sb2.root), "serve", "--port", port],
            env=sb2.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 1, (out.returncode, out.stderr)
        assert f"port {port}" in out.stderr and "--port" in out.stderr and "CODEMEM_MCP_PORT" in out.stderr, out.stderr
        assert "panicked" not in out.stderr and out.stdout == ""
        # The config and the environment choose the port too.
        second = HttpServer(sb2, env=sb2.env(CODEMEM_MCP_PORT="0"))
        assert second.url != first.url
        assert second.stop() == 0
    finally:
        first.stop()
        sb1.cleanup()
        sb2.cleanup()


def test_non_loopback_bind_without_a_token_is_refused():
    sb = Sandbox("open", "[mcp]\nrequire_token = false\n")
    try:
        out = subprocess.run(
            [str(codemem_bin()), "--root", str(sb.root), "serve", "--port", "0", "--host", "0.0.0.0"],
            env=sb.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 2 and "refusing to serve MCP" in out.stderr, (out.returncode, out.stderr)
        # On loopback an open server is allowed (and needs no token).
        server = HttpServer(sb)
        try:
            r = post(server, INIT, {})
            assert r.status_code == 200, r.text
        finally:
            server.stop()
    finally:
        sb.cleanup()


def test_token_file_is_private_and_printed():
    sb = Sandbox("token")
    try:
        t1 = sb.token()
        assert t1.startswith("cmm_") and len(t1) > 40
        assert (sb.home / "mcp-token").stat().st_mode & 0o777 == 0o600
        out = subprocess.run([str(codemem_bin()), "token", "--json"], env=sb.env(), capture_output=True, text=True, timeout=60)
        j = json.loads(out.stdout)
        assert j["token"] == t1 and j["path"] == str(sb.home / "mcp-token") and j["header"] == f"Authorization: Bearer {t1}"
    finally:
        sb.cleanup()
