"""With the real embedding model: natural-language codemem/search, semantic workspace/symbol
matches, codemem/similar, the codemem.findSimilar command and the "Find similar code" action."""

from __future__ import annotations

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_harness import (
    CLIENTS,
    INVALID_PARAMS,
    SEMANTIC,
    indexed_polyglot,
    line_of,
    rank_of,
    rel,
    summary,
    uri,
)

pytestmark = pytest.mark.asyncio

# A near-duplicate of calculate_invoice_total with other names: what "find similar code" is for.
DUPLICATE = '''"""Quotes for the sales team (copied from billing/invoice.py years ago)."""

from decimal import ROUND_HALF_UP, Decimal

VAT = {"DE": Decimal("19"), "FR": Decimal("20"), "NL": Decimal("21")}


def quote_price_breakdown(lines, country, rebate_percent=Decimal("0")):
    """Sums the quote lines, applies the rebate, then adds the VAT of the country."""
    if country not in VAT:
        raise KeyError(f"no VAT rate configured for country {country!r}")
    if not Decimal("0") <= rebate_percent <= Decimal("100"):
        raise ValueError("rebate must be between 0 and 100 percent")
    subtotal = sum(line.subtotal_cents for line in lines)
    rebate = int((Decimal(subtotal) * rebate_percent / 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    taxable = subtotal - rebate
    vat = int((Decimal(taxable) * VAT[country] / 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    return {"subtotal": subtotal, "rebate": rebate, "vat": vat, "total": taxable + vat}
'''


def add_duplicate(root) -> None:
    (root / "sales").mkdir()
    (root / "sales" / "quotes.py").write_text(DUPLICATE)


@pytest_asyncio.fixture(scope="module", params=CLIENTS)
async def ws(request):
    async with indexed_polyglot(request.param, "semantic", SEMANTIC, prepare=add_duplicate, embedded=True) as ws:
        yield ws


# (query, files that count as the right answer): paraphrases that share few words with the code.
NL_QUERIES = [
    ("throttle callers that make too many API calls", ["src/ratelimit.rs"]),
    ("store user credentials safely so a database leak does not reveal them", ["auth/passwords.py"]),
    ("wait until the user stops typing before calling the function", ["web/src/utils/debounce.ts"]),
    ("spread out repeated attempts when the server is flaky", ["pkg/httpclient/retry.go"]),
    ("keep only the most recently accessed items in memory", ["java/src/main/java/com/example/cache/LruCache.java"]),
    ("fixed-size circular queue of bytes", ["native/ringbuf/ring_buffer.c", "native/ringbuf/ring_buffer.h"]),
    ("how do we release to production and roll back a bad deploy", ["docs/deployment.md"]),
]


async def test_natural_language_search_finds_the_right_file_in_the_top_3(ws):
    failures = []
    for query, want in NL_QUERIES:
        res = await ws.s.search(query, k=10)
        assert res["mode"] == "hybrid" and res["denseAvailable"] is True, {k: res[k] for k in ("mode", "denseAvailable")}
        r = rank_of(res["hits"], ws.root, want)
        if not (r and r <= 3):
            failures.append(f"{query!r}: want {want} in the top 3, rank {r}:\n{summary(res['hits'][:5], ws.root)}")
    assert not failures, f"{len(failures)} of {len(NL_QUERIES)} missed:\n" + "\n".join(failures)


async def test_dense_mode_alone_finds_a_paraphrase(ws):
    res = await ws.s.search("keep only the most recently accessed items in memory", mode="dense", k=5)
    assert res["mode"] == "dense"
    r = rank_of(res["hits"], ws.root, ["java/src/main/java/com/example/cache/LruCache.java"])
    assert r and r <= 3, summary(res["hits"], ws.root)


async def test_workspace_symbol_semantic_matches_follow_name_matches(ws):
    syms = await ws.s.symbols("throttle callers that make too many API calls")
    top = [rel(x.location.uri, ws.root) for x in syms[:5]]
    assert "src/ratelimit.rs" in top, f"semantic symbol matches, top 5: {top}"


def chunk_contains(hit: dict, root, path: str, line: int) -> bool:
    r = hit["range"]
    return rel(hit["uri"], root) == path and r["start"]["line"] <= line <= r["end"]["line"]


async def test_similar_at_position_finds_the_duplicate_and_excludes_itself(ws):
    path = "billing/invoice.py"
    line = line_of(ws.root / path, "def calculate_invoice_total") + 3
    res = await ws.s.request(
        "codemem/similar", {"textDocument": {"uri": uri(ws.root / path)}, "position": {"line": line, "character": 4}, "k": 5}
    )
    hits = res["hits"]
    assert rank_of(hits, ws.root, ["sales/quotes.py"]) in (1, 2, 3), summary(hits, ws.root)
    assert not any(chunk_contains(h, ws.root, path, line) for h in hits), (
        "the chunk asked about must not be its own best match:\n" + summary(hits, ws.root)
    )
    assert len(hits) <= 5


async def test_similar_for_a_selection(ws):
    path = "sales/quotes.py"
    start = line_of(ws.root / path, "def quote_price_breakdown")
    end = line_of(ws.root / path, 'return {"subtotal"')
    res = await ws.s.request(
        "codemem/similar",
        {"textDocument": {"uri": uri(ws.root / path)}, "range": {"start": {"line": start, "character": 0}, "end": {"line": end, "character": 10}}},
    )
    assert rank_of(res["hits"], ws.root, ["billing/invoice.py"]) in (1, 2, 3), summary(res["hits"], ws.root)


async def test_code_action_find_similar_code_runs_the_command(ws):
    path = "sales/quotes.py"
    start = line_of(ws.root / path, "def quote_price_breakdown")
    r = types.Range(start=types.Position(line=start, character=0), end=types.Position(line=start + 11, character=0))
    actions = await ws.s.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(ws.root / path)),
            range=r,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    found = [a for a in actions or [] if a.title == "Find similar code"]
    assert found, f"code actions: {[a.title for a in actions or []]}"
    action = found[0]
    cmd = action.command if isinstance(action, types.CodeAction) else action
    assert cmd is not None and cmd.command == "codemem.findSimilar", action
    # Running the command the action carries gives the same kind of answer as codemem/similar.
    res = await ws.s.command(cmd.command, *(cmd.arguments or []))
    assert rank_of(res["hits"], ws.root, ["billing/invoice.py"]) in (1, 2, 3), summary(res["hits"], ws.root)
    direct = await ws.s.request(
        "codemem/similar", {"textDocument": {"uri": uri(ws.root / path)}, "range": {"start": {"line": start, "character": 0}, "end": {"line": start + 11, "character": 0}}}
    )
    assert [(h["uri"], h["range"]) for h in res["hits"]] == [(h["uri"], h["range"]) for h in direct["hits"]], (
        "the action's command answers like codemem/similar on the same range"
    )


async def test_find_similar_command_with_explicit_arguments(ws):
    path = "sales/quotes.py"
    start = line_of(ws.root / path, "def quote_price_breakdown")
    res = await ws.s.command(
        "codemem.findSimilar",
        {"uri": uri(ws.root / path), "range": {"start": {"line": start, "character": 0}, "end": {"line": start + 5, "character": 0}}},
    )
    assert rank_of(res["hits"], ws.root, ["billing/invoice.py"]) in (1, 2, 3), summary(res["hits"], ws.root)


@pytest.mark.parametrize(
    "params",
    [
        {"textDocument": {"uri": "file:///no/such/file.py"}, "position": {"line": 0, "character": 0}},
        {"textDocument": {"uri": "untitled:Untitled-1"}, "position": {"line": 0, "character": 0}},
        {"textDocument": {"uri": "https://example.com/a.py"}, "position": {"line": 0, "character": 0}},
        {"textDocument": {"uri": "__ROOT__/billing/invoice.py"}, "position": {"line": 99999, "character": 0}},
        {
            "textDocument": {"uri": "__ROOT__/billing/invoice.py"},
            "range": {"start": {"line": 10, "character": 0}, "end": {"line": 2, "character": 0}},
        },
        {"textDocument": {"uri": "__ROOT__/billing/invoice.py"}, "position": {"line": -1, "character": 0}},
    ],
    ids=["missing-file", "untitled", "https", "line-out-of-range", "reversed-range", "negative"],
)
async def test_similar_bad_locations_are_invalid_params(ws, params):
    import json

    params = json.loads(json.dumps(params).replace("__ROOT__", uri(ws.root)))
    with pytest.raises(JsonRpcException) as e:
        await ws.s.request("codemem/similar", params)
    assert e.value.code == INVALID_PARAMS, f"{params} → {e.value.code} {e.value.message}"
    res = await ws.s.search("TokenBucket")
    assert res["hits"], "the server keeps answering"


async def test_similar_character_past_the_end_of_line_is_clamped(ws):
    """LSP: a character beyond the line length defaults back to the line length (not an error)."""
    path = "billing/invoice.py"
    line = line_of(ws.root / path, "def calculate_invoice_total") + 3
    length = len((ws.root / path).read_text().splitlines()[line])
    u = uri(ws.root / path)
    past = await ws.s.request("codemem/similar", {"textDocument": {"uri": u}, "position": {"line": line, "character": 5000}})
    at_end = await ws.s.request("codemem/similar", {"textDocument": {"uri": u}, "position": {"line": line, "character": length}})
    assert past["hits"], past
    assert [(h["uri"], h["range"]) for h in past["hits"]] == [(h["uri"], h["range"]) for h in at_end["hits"]]
