"""Changes made outside the editor: a `git checkout` of another branch rewrites and deletes
many files while the server runs. Results must follow, through one incremental re-index."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_harness import (
    LEXICAL,
    copy_polyglot,
    rel,
    session,
    summary,
    tempdir,
    uri,
)

pytestmark = pytest.mark.asyncio

WIDGETS = 60


def git(root: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=codemem-test", "-c", "user.email=test@example.invalid", *args],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"git {' '.join(args)} failed:\n{out.stderr}"
    return out.stdout


def make_repo() -> Path:
    """polyglot on `main`; `feature` deletes java/ and docs/, rewrites src/ratelimit.rs and
    adds WIDGETS new modules."""
    root = copy_polyglot(tempdir("branch"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "main")
    git(root, "checkout", "-q", "-b", "feature")
    git(root, "rm", "-q", "-r", "java", "docs")
    (root / "src" / "ratelimit.rs").write_text(
        "//! Leaky-bucket rate limiting.\n\n"
        "pub struct LeakyBucketGovernor {\n    level: f64,\n    leak_per_sec: f64,\n}\n\n"
        "impl LeakyBucketGovernor {\n    pub fn admit(&mut self) -> bool {\n        self.level += 1.0;\n"
        "        self.level <= 10.0\n    }\n}\n"
    )
    (root / "widgets").mkdir()
    for i in range(WIDGETS):
        (root / "widgets" / f"widget_{i:02}.py").write_text(
            f"def render_feature_widget_{i:02}(ctx):\n    return f'<div class=\"widget-{i}\">{{ctx}}</div>'\n"
        )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feature")
    git(root, "checkout", "-q", "main")
    assert (root / "java").is_dir() and not (root / "widgets").exists()
    return root


def tracked_files(root: Path) -> int:
    """Files of the checked-out branch codemem indexes (dot-files are skipped)."""
    return sum(1 for p in git(root, "ls-files").splitlines() if not any(x.startswith(".") for x in p.split("/")))


def changed_files(root: Path, a: str, b: str) -> list[tuple[Path, types.FileChangeType]]:
    out = []
    for line in git(root, "diff", "--name-status", a, b).splitlines():
        status, path = line.split("\t", 1)
        kind = {"A": types.FileChangeType.Created, "D": types.FileChangeType.Deleted}.get(
            status[0], types.FileChangeType.Changed
        )
        out.append((root / path, kind))
    return out


async def checkout_and_wait(s, root: Path, branch: str, notify_watched: bool):
    before = git(root, "rev-parse", "HEAD").strip()
    m = s.mark()
    git(root, "checkout", "-q", branch)
    if notify_watched:
        # What VS Code does: one didChangeWatchedFiles per batch of file events.
        after = git(root, "rev-parse", "HEAD").strip()
        changes = changed_files(root, before, after)
        s.client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(changes=[types.FileEvent(uri=uri(p), type=k) for p, k in changes])
        )
    # Wait for a run that started after the checkout to end with the root ready.
    await s.wait_run([root], since=m)
    return m


@pytest.mark.parametrize(
    "client,notify_watched",
    [("neovim", False), ("visual-studio-code", True)],
    ids=["neovim-file-watcher-only", "vscode-with-didChangeWatchedFiles"],
)
async def test_branch_switch_results_follow_with_one_reindex(client, notify_watched):
    root = make_repo()
    async with session(client, [root], LEXICAL) as s:
        await s.wait_ready([root])
        res = await s.search("LruCache")
        assert res["hits"] and rel(res["hits"][0]["uri"], root).startswith("java/"), summary(res["hits"], root)
        res = await s.search("TokenBucket")
        assert res["hits"] and rel(res["hits"][0]["uri"], root) == "src/ratelimit.rs"

        m = await checkout_and_wait(s, root, "feature", notify_watched)
        res = await s.search("LeakyBucketGovernor")
        assert res["hits"] and rel(res["hits"][0]["uri"], root) == "src/ratelimit.rs", summary(res["hits"], root)
        res = await s.search("TokenBucket")
        assert not any(rel(h["uri"], root) == "src/ratelimit.rs" and "TokenBucket" in h["snippet"] for h in res["hits"]), (
            "the old definition is gone from the rewritten file:\n" + summary(res["hits"], root)
        )
        res = await s.search("LruCache")
        assert not any(rel(h["uri"], root).startswith("java/") for h in res["hits"]), (
            "deleted files are gone:\n" + summary(res["hits"], root)
        )
        res = await s.search("render_feature_widget_42")
        assert res["hits"] and rel(res["hits"][0]["uri"], root) == "widgets/widget_42.py", summary(res["hits"], root)
        st = await s.command("codemem.status")
        assert st["roots"][0]["files"] == tracked_files(root), st

        # A burst of ~70 file events is one incremental run, not one per file. Give the
        # debouncer time to (wrongly) start a second one before counting.
        await asyncio.sleep(3)
        runs = s.begins(m)
        assert len(runs) == 1, f"one re-index for one checkout, got {len(runs)}: {runs}"

        # And back.
        m = await checkout_and_wait(s, root, "main", notify_watched)
        res = await s.search("TokenBucket")
        assert res["hits"] and rel(res["hits"][0]["uri"], root) == "src/ratelimit.rs", summary(res["hits"], root)
        res = await s.search("render_feature_widget_42")
        assert not any("widgets/" in h["uri"] for h in res["hits"]), summary(res["hits"], root)
        res = await s.search("LruCache")
        assert res["hits"] and rel(res["hits"][0]["uri"], root).startswith("java/"), summary(res["hits"], root)
        await asyncio.sleep(3)
        assert len(s.begins(m)) == 1, s.begins(m)
