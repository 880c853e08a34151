"""The Neovim plugin (editors/nvim) in a real headless Neovim 0.11 against the real server:
tests/editors/nvim_plugin.lua loads it like a user would, runs the user commands and
:checkhealth codemem, and prints what happened (one run per module); the tests check it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from lsp_harness import REPO, copy_polyglot, make_home, run_nvim_script, tempdir


def documented_commands() -> list[str]:
    doc = (REPO / "editors/nvim/doc/codemem.txt").read_text()
    return sorted(set(re.findall(r"\*:(Codemem\w+)\*", doc)))


class Run:
    def __init__(self, root: Path, got: dict[str, str], report: str):
        self.root, self.got, self.report = root, got, report

    def __getitem__(self, tag: str):
        assert tag in self.got, f"{tag} missing (the script stopped before it)\n{self.report}"
        return json.loads(self.got[tag])


@pytest.fixture(scope="module")
def run():
    d = tempdir("nvim-plugin")
    root = copy_polyglot(d)
    # A project root marker, as a real project has (.git or codemem.toml).
    (root / "codemem.toml").write_text("# codemem settings for this project\n")
    # :checkhealth runs `codemem doctor` with this home too.
    r = run_nvim_script(
        REPO / "tests/editors/nvim_plugin.lua", d, root, make_home(d), CODEMEM_PLUGIN_DIR=str(REPO / "editors/nvim")
    )
    yield Run(root, r.tags, r.report)
    shutil.rmtree(d, ignore_errors=True)


def test_script_ran_to_the_end_and_stopped_the_server(run):
    assert "CODEMEM_ERROR" not in run.got, run.report
    assert run["CODEMEM_DONE"]["stopped"] is True, run.report


def test_user_commands_are_the_documented_ones(run):
    assert run["CODEMEM_COMMANDS"] == documented_commands()


def test_setup_starts_the_server_with_the_options(run):
    ready = run["CODEMEM_READY"]
    assert ready["root_dir"] == str(run.root)
    assert ready["init_options"] == {"lexicalOnly": True, "mcp": {"enabled": False}}
    assert ready["status"]["state"] == "ready"


def test_progress_arrives_through_lsp_progress(run):
    ready = run["CODEMEM_READY"]
    kinds = ready["raw_progress"]
    assert kinds and kinds[0] == "begin" and kinds[-1] == "end", ready
    # The plugin echoed it with a percentage, and its statusline went "codemem N%" → "codemem".
    assert any(re.match(r"^codemem: indexing \S+: \d+% ", e) for e in ready["echoes"]), ready["echoes"]
    assert any(re.fullmatch(r"codemem \d+%", s) for s in ready["statuslines"]), ready["statuslines"]
    assert ready["statusline"] == "codemem", ready


def test_search_fills_the_quickfix_list_with_the_definition(run):
    search = run["CODEMEM_SEARCH"]
    qf = search["qf"]
    assert qf, run.report
    assert Path(qf[0]["file"]).resolve() == (run.root / "billing/invoice.py").resolve(), qf
    # At the definition's own line, even when its chunk starts with a merged neighbour.
    lines = (run.root / "billing/invoice.py").read_text().splitlines()
    def_line = next(i + 1 for i, l in enumerate(lines) if l.startswith("def calculate_invoice_total("))
    assert qf[0]["lnum"] == def_line, qf[0]
    assert qf[0]["text"].startswith("calculate_invoice_total: def calculate_invoice_total("), qf[0]
    # Without Telescope / fzf-lua the results also go to vim.ui.select.
    assert search["selects"] and search["selects"][0]["n"] == len(qf)
    assert search["selects"][0]["first"].startswith("billing/invoice.py:"), search["selects"]


def test_remember_similar_status_reindex(run):
    assert run["CODEMEM_SIMILAR"]["n"] > 0, run.report
    status = run["CODEMEM_STATUS"]["msg"]
    # The note :CodememRemember pinned is counted.
    assert "state: ready" in status and f"{run.root}:" in status and " 1 notes" in status, status
    assert re.search(r"reindexed: \d+ files indexed, \d+ unchanged", run["CODEMEM_REINDEX"]["msg"]), run.report


def test_checkhealth_reports_ok(run):
    health = run["CODEMEM_HEALTH"]["text"]
    assert "OK" in health, health
    assert "ERROR" not in health and "WARNING" not in health, health
    for expected in ("setup() called", "codemem 0.", "embedding model", "state: ready"):
        assert expected in health, f"{expected!r} missing from :checkhealth codemem\n{health}"
