"""Robustness through a real client: unknown methods, out-of-range positions, unknown and
non-file URIs, a 10 MB document, a burst of 1,000 didChange. Each gets a spec-conforming error
or is handled; the server keeps answering; stdout stays pure LSP (checked by the session)."""

from __future__ import annotations

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_harness import (
    CLIENTS,
    INVALID_PARAMS,
    LEXICAL,
    METHOD_NOT_FOUND,
    indexed_polyglot,
    rel,
    rng,
    session,
    summary,
    tempdir,
    uri,
)

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(scope="module", params=CLIENTS)
async def ws(request):
    async with indexed_polyglot(request.param, "robust", LEXICAL) as ws:
        yield ws


async def still_answers(ws):
    res = await ws.s.search("TokenBucket")
    assert res["hits"] and rel(res["hits"][0]["uri"], ws.root) == "src/ratelimit.rs", summary(res["hits"], ws.root)


async def test_unknown_request_is_method_not_found(ws):
    for method in ("codemem/noSuchRequest", "textDocument/noSuchFeature", "workspace/noSuchThing"):
        with pytest.raises(JsonRpcException) as e:
            await ws.s.request(method, {"a": 1})
        assert e.value.code == METHOD_NOT_FOUND, (method, e.value)
    await still_answers(ws)


async def test_unknown_notifications_are_ignored(ws):
    ws.s.notify("codemem/noSuchNotification", {"a": 1})
    ws.s.notify("$/noSuchThing", {"a": 1})
    ws.s.notify("$/setTrace", {"value": "verbose"})
    await still_answers(ws)


async def test_unknown_command_is_an_error(ws):
    with pytest.raises(JsonRpcException) as e:
        await ws.s.command("codemem.noSuchCommand")
    assert e.value.code in (INVALID_PARAMS, METHOD_NOT_FOUND), e.value
    await still_answers(ws)


def hover_params(u, line, ch):
    return types.HoverParams(text_document=types.TextDocumentIdentifier(uri=u), position=types.Position(line=line, character=ch))


@pytest.mark.parametrize("line", [10_000, 2**31 - 1])
async def test_hover_out_of_range_line_is_invalid_params(ws, line):
    u = uri(ws.root / "src/ratelimit.rs")
    ws.s.open(ws.root / "src/ratelimit.rs", language="rust")
    with pytest.raises(JsonRpcException) as e:
        await ws.s.client.text_document_hover_async(hover_params(u, line, 0))
    assert e.value.code == INVALID_PARAMS, e.value
    ws.s.close_doc(u)
    await still_answers(ws)


async def test_code_action_bad_ranges_are_invalid_params(ws):
    u = uri(ws.root / "src/ratelimit.rs")
    wrong = []
    for r in (rng(5000, 0, 5001, 0), rng(10, 0, 3, 0)):
        try:
            got = await ws.s.request(
                "textDocument/codeAction",
                {"textDocument": {"uri": u}, "range": r, "context": {"diagnostics": []}},
            )
            wrong.append(f"{r}: answered {str(got)[:150]}")
        except JsonRpcException as e:
            if e.code != INVALID_PARAMS:
                wrong.append(f"{r}: error {e.code} {e.message}")
    assert not wrong, "out-of-range / reversed ranges must be InvalidParams:\n" + "\n".join(wrong)
    await still_answers(ws)


@pytest.mark.parametrize(
    "u",
    [
        "file:///definitely/not/here.rs",
        "untitled:Untitled-1",
        "https://example.com/ratelimit.rs",
        "vscode-notebook-cell:/x.ipynb#cell1",
        "not a uri at all",
    ],
)
async def test_requests_on_unknown_or_non_file_uris_are_invalid_params(ws, u):
    wrong = []
    for method, params in (
        ("textDocument/hover", {"textDocument": {"uri": u}, "position": {"line": 0, "character": 0}}),
        ("textDocument/codeLens", {"textDocument": {"uri": u}}),
        ("textDocument/codeAction", {"textDocument": {"uri": u}, "range": rng(0, 0, 0, 1), "context": {"diagnostics": []}}),
        ("codemem/similar", {"textDocument": {"uri": u}, "position": {"line": 0, "character": 0}}),
    ):
        try:
            got = await ws.s.request(method, params)
            wrong.append(f"{method}: answered {str(got)[:150]}")
        except JsonRpcException as e:
            if e.code != INVALID_PARAMS:
                wrong.append(f"{method}: error {e.code} {e.message}")
    assert not wrong, f"{u!r} must be InvalidParams:\n" + "\n".join(wrong)
    await still_answers(ws)


async def test_notifications_on_non_file_or_unknown_documents_are_ignored(ws):
    ws.s.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": "untitled:Untitled-7", "languageId": "python", "version": 1,
                          "text": "def stray_untitled_buffer_fn(): pass\n"}},
    )
    ws.s.change("https://example.com/x.py", 2, [{"text": "x"}])
    ws.s.change(uri(ws.root / "never_opened.py"), 5, [{"range": rng(3, 0, 3, 0), "text": "x"}])
    ws.s.save("untitled:Untitled-7")
    ws.s.close_doc("untitled:Untitled-7")
    ws.s.close_doc(uri(ws.root / "never_opened.py"))
    # Opening a file outside every root is ignored too (nothing indexed from it).
    outside = tempdir("outside") / "elsewhere.py"
    ws.s.open(outside, text="def outside_the_workspace_fn(): pass\n", language="python")
    await still_answers(ws)
    res = await ws.s.search("stray_untitled_buffer_fn")
    assert not any("stray_untitled_buffer_fn" in h["snippet"] for h in res["hits"]), summary(res["hits"])
    res = await ws.s.search("outside_the_workspace_fn")
    assert not any("outside_the_workspace_fn" in h["snippet"] for h in res["hits"]), summary(res["hits"])
    ws.s.close_doc(uri(outside))


async def test_a_10_mb_document_is_accepted(ws):
    f = ws.root / "generated" / "huge_table.py"
    line = "ROW = ('0123456789abcdef', 42, 3.14159, 'lorem ipsum dolor sit amet')\n"
    n = 10 * 1024 * 1024 // len(line) + 1
    text = line * n + "def gigantic_table_tail_marker():\n    return ROW\n"
    assert len(text.encode()) >= 10 * 1024 * 1024
    u = ws.s.open(f, text=text, language="python")
    await still_answers(ws)
    # The buffer is kept: a position on its last lines is valid (no error; no memories → null).
    h = await ws.s.client.text_document_hover_async(hover_params(u, n + 1, 4))
    assert h is None or h.contents is not None
    # An edit near the end of the 10 MB buffer is applied without trouble.
    ws.s.change(u, 2, [{"range": rng(n, 4, n, 4), "text": "very_"}])
    await still_answers(ws)
    # Larger than index.max_file_bytes (1 MiB): kept, but not indexed.
    res = await ws.s.search("gigantic_table_tail_marker")
    assert not any(rel(h["uri"], ws.root) == "generated/huge_table.py" for h in res["hits"]), summary(res["hits"], ws.root)
    ws.s.close_doc(u)
    await still_answers(ws)


async def test_a_burst_of_1000_did_change_ends_in_the_right_text(ws):
    f = ws.root / "src" / "tally.py"
    base = "ocelot_tally_init\n\n\ndef ocelot_counter(n):\n    return n + 1\n"
    u = ws.s.open(f, text=base, language="python")
    line0 = "ocelot_tally_init"
    lines_added = 0
    for i in range(1000):
        changes = [{"range": rng(0, 0, 0, len(line0)), "text": f"ocelot_tally_{i}"}]
        line0 = f"ocelot_tally_{i}"
        if i % 100 == 99:
            end_line = len(base.split("\n")) - 1 + lines_added
            changes.append({"range": rng(end_line, 0, end_line, 0), "text": f"checkpoint_marmot_{i}\n"})
            lines_added += 1
        ws.s.change(u, i + 2, changes)
    await still_answers(ws)
    res = await ws.s.wait_search(
        "ocelot_tally_999",
        lambda r: any(rel(h["uri"], ws.root) == "src/tally.py" and h["unsaved"] for h in r["hits"]),
        "the last of 1,000 changes is searchable",
    )
    snippet = next(h["snippet"] for h in res["hits"] if rel(h["uri"], ws.root) == "src/tally.py")
    assert "ocelot_tally_999" in snippet, snippet
    assert "ocelot_tally_998" not in snippet and "ocelot_tally_init" not in snippet, snippet
    res = await ws.s.search("checkpoint_marmot_999")
    hs = [h for h in res["hits"] if rel(h["uri"], ws.root) == "src/tally.py"]
    assert hs, summary(res["hits"], ws.root)
    # Every appended line is in the buffer, in order (no change lost or applied twice).
    res = await ws.s.search("checkpoint_marmot_499")
    snip = next(h["snippet"] for h in res["hits"] if rel(h["uri"], ws.root) == "src/tally.py")
    present = [i for i in range(99, 1000, 100) if f"checkpoint_marmot_{i}" in snip]
    assert snip.count("checkpoint_marmot_") == len(present) and present == sorted(present), snip
    ws.s.close_doc(u)
    await still_answers(ws)
