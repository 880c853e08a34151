"""Unsaved editor buffers: what people type is searchable before it is saved, marked unsaved;
saving or closing reconciles with the disk."""

from __future__ import annotations

import pytest
import pytest_asyncio

from lsp_harness import (
    CLIENTS,
    LEXICAL,
    end_position,
    indexed_polyglot,
    line_of,
    rel,
    rng,
    summary,
    uri,
)

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(scope="module", params=CLIENTS)
async def ws(request):
    async with indexed_polyglot(request.param, "live", LEXICAL) as ws:
        yield ws


def hits_in(res: dict, root, path: str) -> list[dict]:
    return [h for h in res["hits"] if rel(h["uri"], root) == path]


NEW_FUNCTION = '''

def reconcile_quokka_ledger(invoices: list[Invoice]) -> int:
    """Adds up what every invoice of the quokka sanctuary still owes."""
    return sum(inv.total_cents() for inv in invoices)
'''


async def test_unsaved_edit_is_found_then_save_reconciles(ws):
    s, root = ws.s, ws.root
    path = "billing/invoice.py"
    f = root / path
    disk = f.read_text()
    assert "reconcile_quokka_ledger" not in disk
    u = s.open(f, language="python")
    line, ch = end_position(disk)
    s.change(u, 2, [{"range": rng(line, ch, line, ch), "text": NEW_FUNCTION}])
    buffer = disk + NEW_FUNCTION
    def_line = buffer.split("\n").index("def reconcile_quokka_ledger(invoices: list[Invoice]) -> int:")

    res = await s.wait_search(
        "reconcile_quokka_ledger",
        lambda r: any(h["unsaved"] for h in hits_in(r, root, path)),
        "the unsaved function is searchable",
    )
    h = hits_in(res, root, path)[0]
    assert res["hits"][0] is h, "the only definition is the first hit:\n" + summary(res["hits"], root)
    assert h["unsaved"] is True
    assert h["range"]["start"]["line"] <= def_line <= h["range"]["end"]["line"], (def_line, h["range"])
    assert "reconcile_quokka_ledger" in h["snippet"]
    assert f.read_text() == disk, "the server must not write the buffer to disk"
    # The rest of the file is still found (from the overlay, since the buffer is open).
    res = await s.search("calculate_invoice_total")
    assert hits_in(res, root, path), summary(res["hits"], root)

    # Save: the editor writes the file, then didSave (without text).
    f.write_text(buffer)
    s.save(u)
    res = await s.wait_search(
        "reconcile_quokka_ledger",
        lambda r: (hs := hits_in(r, root, path)) and all(not h["unsaved"] for h in hs),
        "after save, the hit comes from disk (unsaved=false)",
    )
    s.close_doc(u)
    res = await s.wait_search(
        "reconcile_quokka_ledger",
        lambda r: (hs := hits_in(r, root, path)) and all(not h["unsaved"] for h in hs),
        "after close of a saved buffer, the saved code is still found",
    )


async def test_close_without_saving_forgets_the_edit(ws):
    s, root = ws.s, ws.root
    path = "auth/passwords.py"
    f = root / path
    disk = f.read_text()
    u = s.open(f, language="python")
    addition = "\n\ndef rotate_pepper_keyring_zebra(keys):\n    return list(reversed(keys))\n"
    line, ch = end_position(disk)
    s.change(u, 2, [{"range": rng(line, ch, line, ch), "text": addition}])
    await s.wait_search(
        "rotate_pepper_keyring_zebra",
        lambda r: any(h["unsaved"] for h in hits_in(r, root, path)),
        "the unsaved function is searchable",
    )
    s.close_doc(u)  # discarded: the file on disk never had it
    await s.wait_search(
        "rotate_pepper_keyring_zebra",
        lambda r: not hits_in(r, root, path),
        "after closing without saving the edit is gone",
    )
    res = await s.search("hash_password")
    hs = hits_in(res, root, path)
    assert hs and not any(h["unsaved"] for h in hs), summary(res["hits"], root)


async def test_unsaved_deletion_hides_the_old_definition(ws):
    s, root = ws.s, ws.root
    path = "billing/invoice.py"
    f = root / path
    disk = f.read_text()
    u = s.open(f, language="python")
    start = line_of(f, "def calculate_invoice_total")
    end = line_of(f, 'return {"subtotal": subtotal')
    s.change(u, 2, [{"range": rng(start, 0, end + 1, 0), "text": ""}])
    await s.wait_search(
        "calculate_invoice_total",
        lambda r: all(h["unsaved"] for h in hits_in(r, root, path)),
        "the deleted definition no longer comes from the stale disk index",
    )
    res = await s.search("calculate_invoice_total")
    for h in hits_in(res, root, path):
        assert "def calculate_invoice_total" not in h["snippet"], h
    s.close_doc(u)
    res = await s.wait_search(
        "calculate_invoice_total",
        lambda r: r["hits"] and rel(r["hits"][0]["uri"], root) == path and not r["hits"][0]["unsaved"],
        "after close the definition on disk is back first",
    )
    assert f.read_text() == disk


async def test_new_buffer_not_on_disk_is_searchable_until_closed(ws):
    s, root = ws.s, ws.root
    f = root / "billing" / "draft_refunds.py"
    assert not f.exists()
    text = "def refund_platypus_overcharge(invoice, cents):\n    return invoice.total_cents() - cents\n"
    u = s.open(f, text=text, language="python")
    res = await s.wait_search(
        "refund_platypus_overcharge",
        lambda r: hits_in(r, root, "billing/draft_refunds.py"),
        "a new unsaved file is searchable",
    )
    assert all(h["unsaved"] for h in hits_in(res, root, "billing/draft_refunds.py"))
    s.close_doc(u)
    await s.wait_search(
        "refund_platypus_overcharge",
        lambda r: not any("refund_platypus_overcharge" in h["snippet"] for h in r["hits"]),
        "closing an unsaved new file removes it",
    )


def char_offset(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


async def test_incremental_changes_use_the_negotiated_position_encoding(ws):
    """Positions count UTF-16 code units unless the server negotiated another encoding:
    an insertion right after two non-BMP characters must land exactly there."""
    s, root = ws.s, ws.root
    enc = s.init_result.capabilities.position_encoding or "utf-16"
    enc = getattr(enc, "value", enc)
    f = root / "web" / "src" / "launch.ts"
    text = "// 🚀🚀 rocket launch checklist\nexport const stages = 3;\n"
    u = s.open(f, text=text, language="typescript")
    at = char_offset("// 🚀🚀", enc)
    # Two changes in one notification are applied in order.
    s.change(
        u,
        2,
        [
            {"range": rng(0, at, 0, at), "text": " moonshot_quokka_trajectory"},
            {"range": rng(1, 0, 1, 0), "text": "export const wombatFuelGauge = 7;\n"},
        ],
    )
    res = await s.wait_search(
        "moonshot_quokka_trajectory",
        lambda r: hits_in(r, root, "web/src/launch.ts") and any(
            "wombatFuelGauge" in h["snippet"] for h in hits_in(r, root, "web/src/launch.ts")
        ),
        "both changes are applied",
    )
    snippet = hits_in(res, root, "web/src/launch.ts")[0]["snippet"]
    assert "// 🚀🚀 moonshot_quokka_trajectory rocket launch checklist" in snippet, snippet
    # A full-text change (no range) is accepted too.
    s.change(u, 3, [{"text": "export const kakapoNightShift = 1;\n"}])
    await s.wait_search(
        "kakapoNightShift",
        lambda r: hits_in(r, root, "web/src/launch.ts"),
        "a full replacement is applied",
    )
    res = await s.search("moonshot_quokka_trajectory")
    assert not hits_in(res, root, "web/src/launch.ts"), summary(res["hits"], root)
    s.close_doc(u)
