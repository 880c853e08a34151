"""workspace/symbol and codemem/search on the polyglot fixture (lexical index; one session per
editor, shared by the read-only tests of this module)."""

from __future__ import annotations

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_harness import (
    CLIENTS,
    IGNORED_MARKER,
    INVALID_PARAMS,
    LEXICAL,
    indexed_polyglot,
    line_of,
    rel,
    session,
    summary,
)

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(scope="module", params=CLIENTS)
async def ws(request):
    async with indexed_polyglot(request.param, "search", LEXICAL) as ws:
        yield ws


# (identifier, defining file, the line that defines it)
IDENTIFIERS = [
    ("TokenBucket", "src/ratelimit.rs", "pub struct TokenBucket"),
    ("load_config", "src/config.rs", "fn load_config"),
    ("calculate_invoice_total", "billing/invoice.py", "def calculate_invoice_total"),
    ("hash_password", "auth/passwords.py", "def hash_password"),
    ("LruCache", "java/src/main/java/com/example/cache/LruCache.java", "class LruCache"),
    ("DoWithRetry", "pkg/httpclient/retry.go", "func DoWithRetry"),
    ("escapeHtml", "web/src/markdown/escape.js", "function escapeHtml"),
]


def leaf(name: str) -> str:
    for sep in ("::", ".", "#"):
        name = name.rsplit(sep, 1)[-1]
    return name


def sym_location(sym) -> tuple[str, types.Range | None]:
    loc = sym.location
    return loc.uri, getattr(loc, "range", None)


async def test_workspace_symbol_exact_name_is_the_definition_first(ws):
    failures = []
    for name, path, defline in IDENTIFIERS:
        syms = await ws.s.symbols(name)
        if not syms:
            failures.append(f"{name}: no symbols")
            continue
        first = syms[0]
        u, r = sym_location(first)
        want_line = line_of(ws.root / path, defline)
        got = f"{leaf(first.name)} {rel(u, ws.root)}:{r.start.line if r else '?'}"
        if leaf(first.name) != name or rel(u, ws.root) != path:
            failures.append(f"{name}: first is {got}, want {path}:{want_line}")
        elif r is None or not (r.start.line <= want_line <= r.end.line):
            failures.append(f"{name}: range {r} does not contain the definition line {want_line}")
    assert not failures, "\n".join(failures)


async def test_workspace_symbol_kinds_and_uris(ws):
    syms = await ws.s.symbols("TokenBucket")
    u, _ = sym_location(syms[0])
    assert u.startswith("file:///") and (ws.root / "src/ratelimit.rs").samefile(u[len("file://"):])
    assert syms[0].kind in (types.SymbolKind.Struct, types.SymbolKind.Class), syms[0].kind
    syms = await ws.s.symbols("hash_password")
    assert syms[0].kind in (types.SymbolKind.Function, types.SymbolKind.Method), syms[0].kind


@pytest.mark.parametrize(
    "query,want_name,want_path",
    [
        ("tokenbucket", "TokenBucket", "src/ratelimit.rs"),  # case-insensitive
        ("invoice_total", "calculate_invoice_total", "billing/invoice.py"),  # part of the name
        ("calcinvtot", "calculate_invoice_total", "billing/invoice.py"),  # fuzzy subsequence
        ("lrucach", "LruCache", "java/src/main/java/com/example/cache/LruCache.java"),
    ],
)
async def test_workspace_symbol_fuzzy_names(ws, query, want_name, want_path):
    syms = await ws.s.symbols(query)
    top = [(leaf(x.name), rel(sym_location(x)[0], ws.root)) for x in syms[:3]]
    assert (want_name, want_path) in top, f"{query!r}: top 3 = {top}"


async def test_workspace_symbol_exact_before_fuzzy(ws):
    syms = await ws.s.symbols("debounce")
    names = [leaf(x.name) for x in syms]
    assert names and names[0] == "debounce", names
    assert rel(sym_location(syms[0])[0], ws.root) == "web/src/utils/debounce.ts", names
    # Every exact match comes before every non-exact one.
    exact = [n.lower() == "debounce" for n in names]
    assert exact == sorted(exact, reverse=True), names


async def test_workspace_symbol_unknown_name_is_an_empty_list(ws):
    syms = await ws.s.symbols("zzqqxxNoSuchSymbolAnywhere")
    assert all("zzqqxx" not in x.name.lower() for x in syms)


async def test_search_hit_shape(ws):
    res = await ws.s.search("TokenBucket")
    for k in ("hits", "freshness", "mode", "denseAvailable", "tookMs"):
        assert k in res, f"codemem/search answer lacks {k}: {list(res)}"
    assert res["denseAvailable"] is False, "lexicalOnly: no dense results"
    assert res["hits"], res
    for h in res["hits"]:
        for k, t in (
            ("uri", str),
            ("range", dict),
            ("symbol", (str, type(None))),
            ("kind", str),
            ("score", (int, float)),
            ("snippet", str),
            ("namespace", str),
            ("language", (str, type(None))),
            ("unsaved", bool),
        ):
            assert isinstance(h.get(k), t), f"hit.{k} is {h.get(k)!r}: {h}"
        assert h["uri"].startswith("file:///"), h
        r = h["range"]
        assert r["start"]["line"] <= r["end"]["line"], r
        assert h["unsaved"] is False
    first = res["hits"][0]
    assert rel(first["uri"], ws.root) == "src/ratelimit.rs", summary(res["hits"], ws.root)
    defline = line_of(ws.root / "src/ratelimit.rs", "pub struct TokenBucket")
    assert first["range"]["start"]["line"] <= defline <= first["range"]["end"]["line"], first
    assert "TokenBucket" in first["snippet"], first
    scores = [h["score"] for h in res["hits"]]
    assert scores == sorted(scores, reverse=True), scores


async def test_search_identifiers_rank_the_definition_first(ws):
    failures = []
    for name, path, _ in IDENTIFIERS:
        res = await ws.s.search(name)
        if not res["hits"] or rel(res["hits"][0]["uri"], ws.root) != path:
            failures.append(f"{name}: want {path} first, got\n{summary(res['hits'][:5], ws.root)}")
    assert not failures, "\n".join(failures)


async def test_search_path_filter(ws):
    res = await ws.s.search("password", path="auth/**")
    paths = [rel(h["uri"], ws.root) for h in res["hits"]]
    assert paths and all(p.startswith("auth/") for p in paths), paths
    assert "auth/passwords.py" in paths
    res = await ws.s.search("password")
    assert any(not rel(h["uri"], ws.root).startswith("auth/") for h in res["hits"]), (
        "without the filter other folders (the ADR, docs) match too: " + summary(res["hits"], ws.root)
    )


async def test_search_namespace_filter(ws):
    res = await ws.s.search("invoice total", namespaces=["testing"])
    assert res["hits"], res
    assert all(h["namespace"] == "testing" for h in res["hits"]), summary(res["hits"], ws.root)
    assert rel(res["hits"][0]["uri"], ws.root) == "tests/test_invoice.py", summary(res["hits"], ws.root)
    # Default namespaces are coding + documentation: tests are not searched.
    res = await ws.s.search("invoice total")
    nss = {h["namespace"] for h in res["hits"]}
    assert nss and nss <= {"coding", "documentation"}, summary(res["hits"], ws.root)
    res = await ws.s.search("token bucket rate limiting", namespaces=["architecture"])
    assert res["hits"] and rel(res["hits"][0]["uri"], ws.root) == "docs/adr/0001-token-bucket-rate-limiting.md"
    assert all(h["namespace"] == "architecture" for h in res["hits"])


async def test_search_language_filter_and_k(ws):
    res = await ws.s.search("retry", language="go")
    assert res["hits"] and all(h["language"] == "go" for h in res["hits"]), summary(res["hits"], ws.root)
    res = await ws.s.search("function", k=2)
    assert 0 < len(res["hits"]) <= 2, len(res["hits"])


async def test_search_skips_gitignored_files(ws):
    res = await ws.s.search(IGNORED_MARKER)
    assert not any("build/" in rel(h["uri"], ws.root) for h in res["hits"]), summary(res["hits"], ws.root)


@pytest.mark.parametrize(
    "params,mentions",
    [
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": "x" * 9000}, "query"),
        ({"query": "retry", "namespaces": ["no-such-namespace"]}, "no-such-namespace"),
        ({"query": "retry", "k": 0}, "k"),
        ({"query": "retry", "k": -3}, None),  # a type error: serde names no field
        ({"query": "retry", "k": 100000}, "k"),
        ({"query": "retry", "mode": "telepathic"}, "telepathic"),
        ({"query": "retry", "path": "src/[unclosed"}, "path"),
        ({"namespaces": ["coding"]}, "query"),
        ({"query": 42}, None),
    ],
)
async def test_search_bad_params_are_invalid_params(ws, params, mentions):
    with pytest.raises(JsonRpcException) as e:
        await ws.s.request("codemem/search", params)
    assert e.value.code == INVALID_PARAMS, f"{params!r} → {e.value.code} {e.value.message}"
    if mentions:
        assert mentions.lower() in e.value.message.lower(), f"the message should say what was wrong: {e.value.message!r}"
    # The server keeps answering.
    res = await ws.s.search("TokenBucket")
    assert res["hits"]


async def test_references_callers_and_callees_at_the_cursor(ws):
    """codemem/references: the name under the cursor, its uses as LSP locations; a use resolves
    to its definition; callers and callees; bad modes and empty spots are invalid params."""
    from lsp_harness import uri

    path = ws.root / "auth/passwords.py"
    line = line_of(path, "def hash_password")
    at_def = {"textDocument": {"uri": uri(path)}, "position": {"line": line, "character": 6}}
    res = await ws.s.request("codemem/references", at_def)
    assert res["name"] == "hash_password" and [d["path"] for d in res["definitions"]] == ["auth/passwords.py"], res
    used = {(rel(loc["uri"], ws.root), loc["range"]["start"]["line"]) for loc in res["locations"]}
    signup = ws.root / "auth/signup.py"
    assert ("auth/signup.py", line_of(signup, "password_hash=hash_password(password)")) in used, used
    assert ("auth/signup.py", line_of(signup, "# Upgrade old hashes")) not in used, "a comment is no use"
    # From a use in another file, the same answer.
    use_line = line_of(signup, "password_hash=hash_password(password)")
    col = signup.read_text().splitlines()[use_line].index("hash_password(")
    res2 = await ws.s.request(
        "codemem/references", {"textDocument": {"uri": uri(signup)}, "position": {"line": use_line, "character": col + 2}}
    )
    assert res2["definitions"] == res["definitions"] and res2["locations"] == res["locations"], res2
    callers = await ws.s.request("codemem/references", {**at_def, "mode": "callers"})
    assert callers["references"] and all(r["call"] for r in callers["references"]), callers
    callees = await ws.s.request("codemem/references", {**at_def, "mode": "callees"})
    assert callees["definition"]["path"] == "auth/passwords.py" and callees["callees"], callees
    for params, mentions in [({**at_def, "mode": "sideways"}, "mode"),
                             ({"textDocument": {"uri": uri(path)}, "position": {"line": 0, "character": 0}}, "identifier")]:
        with pytest.raises(JsonRpcException) as e:
            await ws.s.request("codemem/references", params)
        assert e.value.code == INVALID_PARAMS and mentions in e.value.message, e.value.message
