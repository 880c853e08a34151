"""codemem.remember pins a note to a symbol; hover and code lens show it where the code is."""

from __future__ import annotations

import re
import shutil

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_harness import (
    CLIENTS,
    INVALID_PARAMS,
    LEXICAL,
    copy_polyglot,
    line_of,
    make_home,
    session,
    tempdir,
    uri,
)

pytestmark = pytest.mark.asyncio

PATH = "src/ratelimit.rs"


def hover_text(h) -> str:
    if h is None:
        return ""
    c = h.contents
    if isinstance(c, types.MarkupContent):
        return c.value
    if isinstance(c, list):
        return "\n".join(x if isinstance(x, str) else x.value for x in c)
    return c if isinstance(c, str) else c.value


async def hover(s, u, line, ch=8):
    return await s.client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=u), position=types.Position(line=line, character=ch))
    )


async def lenses(s, u):
    got = await s.client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=u))
    )
    out = []
    for lens in got or []:
        if lens.command is None:
            lens = await s.client.code_lens_resolve_async(lens)
        out.append(lens)
    return out


@pytest.mark.parametrize("client", CLIENTS)
async def test_remember_then_hover_and_code_lens_show_the_notes(client):
    d = tempdir("memories")
    root = copy_polyglot(d)
    home = make_home(d)
    f = root / PATH
    u = uri(f)
    sym_line = line_of(f, "pub fn try_acquire_at")
    body_line = line_of(f, "self.refill(now);")
    other_line = line_of(f, "pub fn time_until_available")
    note1 = "Cost is in tokens, not requests: batch endpoints pass their batch size (decided 2026-03)."
    note2 = "Do not call with cost 0: it always succeeds and hides misconfigured limits."
    async with session(client, [root], LEXICAL, home=home) as s:
        await s.wait_ready([root])
        s.open(f, language="rust")
        assert hover_text(await hover(s, u, body_line)) == "", "no memories yet: hover is null"
        assert await lenses(s, u) == [], "no memories yet: no lenses"

        res = await s.command(
            "codemem.remember",
            {"uri": u, "range": {"start": {"line": sym_line, "character": 4}, "end": {"line": sym_line, "character": 30}},
             "note": note1, "tags": ["decision"]},
        )
        assert isinstance(res, dict) and re.fullmatch(r"mem_[0-9a-f]{16}", res.get("id", "")), res

        # Hover anywhere inside that symbol shows the note as markdown.
        h = await s.wait_for_value(lambda: hover(s, u, body_line), lambda h: note1 in hover_text(h), "hover shows the note")
        assert isinstance(h.contents, types.MarkupContent) and h.contents.kind == types.MarkupKind.Markdown, h
        # Another symbol of the same file has no memories.
        assert note1 not in hover_text(await hover(s, u, other_line + 2))

        ls = await lenses(s, u)
        assert len(ls) == 1, ls
        assert ls[0].command.title == "1 note", ls[0]
        assert ls[0].range.start.line <= sym_line <= ls[0].range.end.line or ls[0].range.start.line == sym_line, ls[0]

        res2 = await s.command(
            "codemem.remember",
            {"uri": u, "range": {"start": {"line": body_line, "character": 0}, "end": {"line": body_line, "character": 1}},
             "note": note2},
        )
        assert res2["id"] != res["id"]
        ls = await s.wait_for_value(lambda: lenses(s, u), lambda ls: ls and ls[0].command.title == "2 notes", "lens says 2 notes")
        assert len(ls) == 1
        text = hover_text(await hover(s, u, body_line))
        assert note1 in text and note2 in text, text

        # A file without memories has no lenses.
        assert await lenses(s, uri(root / "src/config.rs")) == []

    # Memories are durable: a new server on the same home shows them again.
    async with session(client, [root], LEXICAL, home=home) as s:
        await s.wait_ready([root])
        s.open(f, language="rust")
        text = hover_text(await hover(s, u, body_line))
        assert note1 in text and note2 in text, text
    shutil.rmtree(d, ignore_errors=True)


@pytest_asyncio.fixture(scope="module")
async def shared_ws():
    root = copy_polyglot(tempdir("remember-bad"))
    async with session("visual-studio-code", [root], LEXICAL) as s:
        await s.wait_ready([root])
        yield s, root


@pytest.mark.parametrize(
    "args",
    [
        {"uri": "__ROOT__/src/ratelimit.rs"},  # no note
        {"uri": "__ROOT__/src/ratelimit.rs", "note": "x", "namespace": "no-such-namespace"},
        {"uri": "file:///etc/passwd", "note": "outside the workspace"},
        {"uri": "untitled:Untitled-1", "note": "not a file"},
        {"uri": "__ROOT__/src/ratelimit.rs", "note": "x", "range": {"start": {"line": 99999, "character": 0}, "end": {"line": 99999, "character": 1}}},
    ],
    ids=["no-note", "bad-namespace", "outside", "untitled", "range-out-of-bounds"],
)
async def test_remember_bad_arguments_are_invalid_params(shared_ws, args):
    import json

    s, root = shared_ws
    args = json.loads(json.dumps(args).replace("__ROOT__", uri(root)))
    with pytest.raises(JsonRpcException) as e:
        await s.command("codemem.remember", args)
    assert e.value.code == INVALID_PARAMS, f"{args} → {e.value.code} {e.value.message}"
    assert (await s.search("TokenBucket"))["hits"], "the server keeps answering"
