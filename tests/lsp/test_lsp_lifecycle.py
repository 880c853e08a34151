"""Lifecycle: capabilities, multi-root workspaces, adding/removing folders, shutdown/exit."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_harness import (
    CLIENTS,
    INVALID_REQUEST,
    LEXICAL,
    REQUEST_TIMEOUT,
    copy_polyglot,
    rel,
    root_key,
    session,
    summary,
    tempdir,
    uri,
)

pytestmark = pytest.mark.asyncio


def small_project(parent, name, files: dict[str, str]):
    root = parent / name
    for p, text in files.items():
        f = root / p
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return root


NOTES = {
    "notes/summarize.py": (
        '"""Meeting notes."""\n\n\ndef summarize_meeting_notes(notes: list[str]) -> str:\n'
        '    """Joins the first line of every note into a short summary."""\n'
        '    firsts = [n.splitlines()[0] for n in notes if n.strip()]\n'
        '    return "; ".join(firsts)\n'
    ),
    "README.md": "# notes service\n\nSummarises meeting notes for the weekly digest.\n",
}
INVENTORY = {
    "inventory/stock.go": (
        "package inventory\n\n// RestockWarehouseBin orders enough units to fill a bin back to its capacity.\n"
        "func RestockWarehouseBin(capacity, onHand int) int {\n\tif onHand >= capacity {\n\t\treturn 0\n\t}\n"
        "\treturn capacity - onHand\n}\n"
    ),
}


def sync_kind(caps: types.ServerCapabilities):
    s = caps.text_document_sync
    if isinstance(s, types.TextDocumentSyncOptions):
        return s.change, s.open_close, s.save
    return s, None, None


@pytest.mark.parametrize("client", CLIENTS)
async def test_initialize_advertises_the_specified_capabilities(client):
    root = copy_polyglot(tempdir("caps"))
    async with session(client, [root], LEXICAL) as s:
        caps = s.init_result.capabilities
        change, open_close, save = sync_kind(caps)
        assert change == types.TextDocumentSyncKind.Incremental, caps.text_document_sync
        assert open_close is True, caps.text_document_sync
        # save notifications without text (includeText=false)
        assert save is not None and save is not False, caps.text_document_sync
        if isinstance(save, types.SaveOptions):
            assert not save.include_text
        assert caps.workspace_symbol_provider, "workspaceSymbolProvider"
        assert caps.hover_provider, "hoverProvider"
        assert caps.code_lens_provider is not None, "codeLensProvider"
        assert caps.code_action_provider, "codeActionProvider"
        cmds = set(caps.execute_command_provider.commands)
        assert {"codemem.reindex", "codemem.status", "codemem.remember", "codemem.findSimilar"} <= cmds, cmds
        wf = caps.workspace.workspace_folders
        assert wf.supported is True and wf.change_notifications not in (None, False), wf
        assert s.init_result.server_info is not None and s.init_result.server_info.name, "serverInfo.name"


@pytest.mark.parametrize("client", CLIENTS)
async def test_multi_root_add_and_remove_folders(client):
    d = tempdir("multiroot")
    poly = copy_polyglot(d)
    notes = small_project(d, "notes-service", NOTES)
    inventory = small_project(d, "inventory", INVENTORY)
    async with session(client, [poly, notes], LEXICAL) as s:
        st = await s.wait_ready([poly, notes])
        listed = {root_key(r["root"]) for r in st["roots"]}
        assert {str(poly), str(notes)} <= listed, st
        # Both roots answer one query.
        res = await s.search("summarize_meeting_notes")
        assert res["hits"] and rel(res["hits"][0]["uri"], notes) == "notes/summarize.py", summary(res["hits"])
        res = await s.search("TokenBucket")
        assert res["hits"] and rel(res["hits"][0]["uri"], poly) == "src/ratelimit.rs", summary(res["hits"])
        res = await s.search("RestockWarehouseBin")
        assert all(str(inventory) not in h["uri"] for h in res["hits"]), (
            "a folder that is not open yet must not be searched:\n" + summary(res["hits"])
        )

        # Add a folder at runtime.
        m = s.mark()
        s.client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri=uri(inventory), name="inventory")], removed=[]
                )
            )
        )
        await s.wait_run([poly, notes, inventory], since=m)
        res = await s.search("RestockWarehouseBin")
        assert res["hits"] and rel(res["hits"][0]["uri"], inventory) == "inventory/stock.go", summary(res["hits"])

        # Remove one: its code disappears from answers and from the status.
        m = s.mark()
        s.client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[], removed=[types.WorkspaceFolder(uri=uri(notes), name="notes-service")]
                )
            )
        )
        res = await s.wait_search(
            "summarize_meeting_notes",
            lambda r: not any(str(notes) in h["uri"] for h in r["hits"]),
            "hits from the removed folder disappear",
        )
        st = await s.command("codemem.status")
        listed = {root_key(r["root"]) for r in st["roots"]}
        assert str(notes) not in listed and {str(poly), str(inventory)} <= listed, st
        # The remaining roots still answer.
        res = await s.search("RestockWarehouseBin")
        assert res["hits"] and rel(res["hits"][0]["uri"], inventory) == "inventory/stock.go"


@pytest.mark.parametrize("client", CLIENTS)
async def test_root_uri_without_workspace_folders(client):
    root = copy_polyglot(tempdir("rooturi"))
    async with session(client, [root], LEXICAL, folders=False) as s:
        await s.wait_ready([root])
        res = await s.search("calculate_invoice_total")
        assert res["hits"] and rel(res["hits"][0]["uri"], root) == "billing/invoice.py", summary(res["hits"])


@pytest.mark.parametrize("client", CLIENTS)
async def test_shutdown_then_exit_ends_with_code_0(client):
    root = copy_polyglot(tempdir("shutdown"))
    async with session(client, [root], LEXICAL) as s:
        await s.wait_ready([root])
        result = await asyncio.wait_for(s.client.shutdown_async(None), REQUEST_TIMEOUT)
        assert result is None
        # After shutdown every request is an InvalidRequest error (LSP spec), and the
        # server keeps waiting for exit.
        with pytest.raises(JsonRpcException) as e:
            await s.request("codemem/search", {"query": "TokenBucket"})
        assert e.value.code == INVALID_REQUEST, e.value
        s.client.exit(None)
        code = await asyncio.wait_for(s.process.wait(), REQUEST_TIMEOUT)
        assert code == 0


async def test_exit_without_shutdown_ends_with_code_1():
    root = copy_polyglot(tempdir("exit1"))
    async with session("neovim", [root], LEXICAL) as s:
        await s.wait_ready([root])
        s.client.exit(None)
        code = await asyncio.wait_for(s.process.wait(), REQUEST_TIMEOUT)
        assert code == 1, "LSP: exit without a prior shutdown ends with exit code 1"


async def test_closing_stdin_ends_the_server():
    """An editor that dies closes the pipe: the server must not linger."""
    root = copy_polyglot(tempdir("eof"))
    async with session("visual-studio-code", [root], LEXICAL) as s:
        await s.wait_ready([root])
        s.process.stdin.close()
        code = await asyncio.wait_for(s.process.wait(), REQUEST_TIMEOUT)
        assert code is not None


async def test_mcp_endpoint_on_an_ephemeral_port_is_announced():
    """With {"mcp": {"port": 0}} the LSP process also serves MCP over HTTP on a free port and
    says where in codemem/status (two editors at once must not fight over 9200)."""
    import re
    import socket
    from urllib.parse import urlparse

    root = copy_polyglot(tempdir("mcp"))
    async with session("visual-studio-code", [root], {"mcp": {"port": 0}, "lexicalOnly": True}) as s:
        st = await s.wait_ready([root])
        mcp = st.get("mcp") or (await s.command("codemem.status")).get("mcp")
        assert mcp and re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", mcp.get("url", "")), st
        port = urlparse(mcp["url"]).port
        assert port and port > 0, mcp
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
