"""The path sandbox over MCP stdio (issue 14): a symlink inside the workspace that leads out
of it is refused also when the path under it does not exist yet (the sandbox must resolve the
longest existing prefix, not only paths that exist)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from mcp_harness import Sandbox, stdio_session, text_of

pytestmark = pytest.mark.asyncio


@pytest.fixture
def sb():
    sb = Sandbox("sandbox")
    outside = Path(tempfile.mkdtemp(prefix="codemem-mcp-outside-")).resolve()
    os.symlink("/etc", sb.root / "etclink")
    os.symlink(outside, sb.root / "outlink")
    os.symlink(outside / "missing", sb.root / "dangling")
    sb.outside = outside
    yield sb
    sb.cleanup()
    for p in sorted(outside.rglob("*"), reverse=True):
        p.unlink() if not p.is_dir() else p.rmdir()
    outside.rmdir()


async def test_remember_under_a_link_out_of_the_workspace_is_refused_before_the_file_exists(sb):
    async with stdio_session(sb) as s:
        for path in [
            "etclink/not-yet-there",
            "etclink/cron.d/new-job",
            "outlink/new_notes.md",
            "dangling/x.md",
            str(sb.root / "etclink" / "not-yet-there"),
        ]:
            r = await s.call_tool("remember", {"text": "a note under a link", "namespace": "shared", "path": path})
            assert r.is_error, f"{path!r} must be refused, got: {text_of(r)}"
            assert "outside the workspace" in text_of(r), f"{path!r}: {text_of(r)}"
        # Paths inside the workspace that do not exist yet are still fine.
        r = await s.call_tool("remember", {"text": "notes for a file to come", "namespace": "shared", "path": "docs/not-yet-there.md"})
        assert not r.is_error, text_of(r)
    assert not any(sb.outside.iterdir()), "nothing was written outside the workspace"
