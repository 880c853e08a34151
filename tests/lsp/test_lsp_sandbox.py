"""What the LSP server reads (issue 14). Positions are checked against the open buffer or the
index, never by reading the file: a FIFO in the workspace does not block the server (hover,
code actions, codemem.remember, codemem/similar, code lens all answer at once), and nothing
outside the workspace roots is read (a file there, a FIFO there, a link leading there, `..`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest
import pytest_asyncio
from pygls.exceptions import JsonRpcException

from lsp_harness import (
    CLIENTS,
    INVALID_PARAMS,
    LEXICAL,
    indexed_polyglot,
    rel,
    rng,
    summary,
    tempdir,
    uri,
)

pytestmark = pytest.mark.asyncio

# A request that touches no file answers in milliseconds; a blocked read never does.
PROMPT = 15.0

OUTSIDE = tempdir("lsp-outside")
SECRET = OUTSIDE / "secret.txt"


def prepare(root: Path) -> None:
    SECRET.write_text("top secret line 1\nline 2\nline 3\n")
    if not (OUTSIDE / "outside.fifo").exists():
        os.mkfifo(OUTSIDE / "outside.fifo")
    os.mkfifo(root / "src" / "pipe.rs")
    os.symlink(OUTSIDE, root / "outlink")


def unblock(fifo: Path) -> None:
    """Gives a reader blocked on `fifo` (the bug) an end of file, so a failing run ends."""
    with contextlib.suppress(OSError):
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)


@pytest_asyncio.fixture(scope="module", params=CLIENTS)
async def ws(request):
    async with indexed_polyglot(request.param, "sandbox", LEXICAL, prepare=prepare) as ws:
        try:
            yield ws
        finally:
            for f in (ws.root / "src" / "pipe.rs", OUTSIDE / "outside.fifo"):
                unblock(f)


async def still_answers(ws):
    res = await ws.s.search("TokenBucket")
    assert res["hits"] and rel(res["hits"][0]["uri"], ws.root) == "src/ratelimit.rs", summary(res["hits"], ws.root)


def requests_on(u: str) -> list[tuple[str, dict]]:
    far = {"line": 9999, "character": 0}
    return [
        ("textDocument/hover", {"textDocument": {"uri": u}, "position": far}),
        ("textDocument/hover", {"textDocument": {"uri": u}, "position": {"line": 0, "character": 0}}),
        ("textDocument/codeAction", {"textDocument": {"uri": u}, "range": rng(0, 0, 9999, 0), "context": {"diagnostics": []}}),
        ("textDocument/codeLens", {"textDocument": {"uri": u}}),
        ("codemem/similar", {"textDocument": {"uri": u}, "position": {"line": 0, "character": 0}}),
        (
            "workspace/executeCommand",
            {"command": "codemem.remember", "arguments": [{"uri": u, "range": rng(9999, 0, 9999, 1), "note": "x"}]},
        ),
    ]


async def refused(ws, u: str, fifo: Path | None = None) -> list[str]:
    """Sends every request about `u`; returns what was wrong (each must be InvalidParams, at once,
    and must not reveal the file's length)."""
    wrong = []
    for method, params in requests_on(u):
        try:
            got = await ws.s.request(method, params, timeout=PROMPT)
            wrong.append(f"{method}: answered {str(got)[:150]}")
        except asyncio.TimeoutError:
            wrong.append(f"{method}: no answer within {PROMPT} s (the server blocked reading {u})")
            if fifo:
                unblock(fifo)
        except JsonRpcException as e:
            if e.code != INVALID_PARAMS:
                wrong.append(f"{method}: error {e.code} {e.message}")
            elif "past the end" in e.message or "lines)" in e.message:
                wrong.append(f"{method}: the error reveals the file was read: {e.message}")
    return wrong


async def test_a_fifo_in_the_workspace_does_not_block_the_server(ws):
    fifo = ws.root / "src" / "pipe.rs"
    wrong = await refused(ws, uri(fifo), fifo)
    assert not wrong, "requests about a FIFO must be refused at once:\n" + "\n".join(wrong)
    await still_answers(ws)


@pytest.mark.parametrize("target", ["file", "fifo", "link", "dotdot", "etc"])
async def test_files_outside_the_roots_are_never_read(ws, target):
    fifo = OUTSIDE / "outside.fifo"
    u = {
        "file": uri(SECRET),
        "fifo": uri(fifo),
        # A link inside the workspace that leads out of it (links are not followed).
        "link": uri(ws.root / "outlink" / "secret.txt"),
        # `..` out of the root, not normalised by the client.
        "dotdot": uri(ws.root) + "/" + os.path.relpath(SECRET, ws.root),
        "etc": "file:///etc/passwd",
    }[target]
    wrong = await refused(ws, u, fifo if target == "fifo" else None)
    assert not wrong, f"{u} must be refused without reading it:\n" + "\n".join(wrong)
    await still_answers(ws)


async def test_positions_still_checked_against_the_index_and_the_buffer(ws):
    f = ws.root / "src" / "ratelimit.rs"
    n = f.read_text().count("\n") + 1
    u = uri(f)
    # Not open: the index's line count.
    await ws.s.request("textDocument/hover", {"textDocument": {"uri": u}, "position": {"line": n - 1, "character": 0}})
    with pytest.raises(JsonRpcException) as e:
        await ws.s.request("textDocument/hover", {"textDocument": {"uri": u}, "position": {"line": n, "character": 0}})
    assert e.value.code == INVALID_PARAMS and f"{n} lines" in e.value.message, e.value
    # Open with more lines than on disk: the buffer's.
    ws.s.open(f, text=f.read_text() + "\n" * 50, language="rust")
    await ws.s.request("textDocument/hover", {"textDocument": {"uri": u}, "position": {"line": n + 20, "character": 0}})
    ws.s.close_doc(u)
    await still_answers(ws)
