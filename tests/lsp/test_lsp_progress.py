"""Indexing progress ($/progress with percentages), cancellation, and the codemem/status
notification."""

from __future__ import annotations

import re

import pytest
from lsprotocol import types

from lsp_harness import (
    CLIENTS,
    INDEX_TIMEOUT,
    LEXICAL,
    SEMANTIC,
    copy_polyglot,
    polyglot_file_count,
    rel,
    root_key,
    session,
    summary,
    tempdir,
)

pytestmark = pytest.mark.asyncio

POLYGLOT_FILES = polyglot_file_count()


def check_status_shape(st: dict) -> None:
    assert st.get("state") in ("indexing", "ready", "error"), st
    assert isinstance(st.get("roots"), list), st
    for r in st["roots"]:
        for k, t in (("root", str), ("files", int), ("pendingFiles", int), ("points", int), ("indexing", bool)):
            assert isinstance(r.get(k), t), f"status root lacks {k}: {r}"
    assert isinstance(st.get("backends"), list) and st["backends"], st
    for b in st["backends"]:
        assert isinstance(b.get("name"), str) and b["name"], b
        assert b.get("kind") in ("embedded", "redis", "qdrant"), b
        assert isinstance(b.get("healthy"), bool), b
        if "breaker" in b and b["breaker"] is not None:
            assert b["breaker"] in ("closed", "open", "half-open"), b


@pytest.mark.parametrize("client", CLIENTS)
async def test_initial_index_reports_progress_and_status(client):
    root = copy_polyglot(tempdir("progress"))
    async with session(client, [root], SEMANTIC) as s:
        st = await s.wait_ready([root], embedded=True)
        check_status_shape(st)
        assert st["state"] == "ready"
        (r,) = [r for r in st["roots"] if root_key(r["root"]) == str(root)]
        assert r["files"] == POLYGLOT_FILES, r
        assert r["pendingFiles"] == 0 and r["points"] >= POLYGLOT_FILES, r
        assert all(b["healthy"] for b in st["backends"]), st
        assert "mcp" not in st or st["mcp"] is None, "mcp is disabled in initializationOptions"

        # The first run was announced with window/workDoneProgress/create before its begin.
        created = [p for k, p in s.events if k == "create"]
        begins = s.begins()
        assert begins, f"no $/progress begin; events: {s.events[:10]}"
        token, begin = begins[0]
        assert token in created, f"progress token {token!r} was not created first ({created})"
        assert re.fullmatch(r"codemem/index/\d+", str(token)), token
        first_progress = next(i for i, (k, p) in enumerate(s.events) if k == "progress" and p[0] == token)
        first_create = next(i for i, (k, p) in enumerate(s.events) if k == "create" and p == token)
        assert first_create < first_progress
        assert begin["title"] == f"codemem: indexing {root.name}", begin
        assert begin.get("cancellable") is True, begin

        values = s.progress_by_token()[token]
        assert values[0]["kind"] == "begin" and values[-1]["kind"] == "end", values
        assert [v["kind"] for v in values[1:-1]] == ["report"] * (len(values) - 2), values
        reports = values[1:-1]
        assert reports, "at least one report between begin and end"
        pct = [v["percentage"] for v in reports if v.get("percentage") is not None]
        assert pct, f"reports carry percentages: {reports}"
        assert all(0 <= p <= 100 for p in pct), pct
        assert pct == sorted(pct), f"percentages never go back: {pct}"
        msgs = [v.get("message", "") for v in reports]
        assert any(re.fullmatch(r"\d+/\d+ files", m) for m in msgs), msgs
        assert any(re.fullmatch(r"embedding \d+/\d+ chunks", m) for m in msgs), msgs
        # "done/total" never exceeds total.
        for m in msgs:
            if mm := re.match(r"(?:embedding )?(\d+)/(\d+)", m):
                assert int(mm.group(1)) <= int(mm.group(2)), m
        end = values[-1]
        assert re.match(r"\d+ files indexed\b", end.get("message", "")), end
        assert int(end["message"].split()[0]) == POLYGLOT_FILES, end
        # The status notification that says "ready" comes after the end of the run.
        end_idx = max(i for i, (k, p) in enumerate(s.events) if k == "progress" and p[0] == token)
        assert any(k == "status" and p["state"] == "ready" for k, p in s.events[end_idx:]), s.events[end_idx:]
        # There was an "indexing" state before that.
        assert any(p["state"] == "indexing" for p in s.statuses()), s.statuses()

        # codemem.status returns the same payload shape on demand.
        st2 = await s.command("codemem.status")
        check_status_shape(st2)
        assert st2["state"] == "ready"

        # A reindex of an unchanged tree reindexes nothing and reports its stats.
        m = s.mark()
        res = await s.command("codemem.reindex")
        assert isinstance(res, dict) and isinstance(res.get("roots"), list) and len(res["roots"]) == 1, res
        stats = res["roots"][0]
        assert stats["files_scanned"] == POLYGLOT_FILES, stats
        assert stats["files_indexed"] == 0 and stats["chunks_upserted"] == 0, stats
        await s.wait_ready([root], since=m, embedded=True)


def generated_repo(parent, n: int):
    root = parent / "generated"
    (root / "src").mkdir(parents=True)
    for i in range(n):
        body = "\n".join(
            f"    total_{j} = sum(value * {i + j} for value in values if value % {j + 2} == 0)" for j in range(12)
        )
        (root / "src" / f"module_{i:03}.py").write_text(
            f'"""Generated module {i}: aggregates sensor readings of station {i}."""\n\n\n'
            f"def aggregate_station_{i}_readings(values):\n{body}\n    return total_0 + total_{11}\n\n\n"
            f"def describe_station_{i}():\n    return 'station {i} reports hourly humidity and pressure'\n"
        )
    return root


async def test_cancel_stops_the_index_run_and_reindex_completes_it():
    root = generated_repo(tempdir("cancel"), 120)
    async with session("visual-studio-code", [root], SEMANTIC) as s:
        # Cancel the first run as soon as it reports anything.
        def first_report():
            for tok, v in s.progress_values():
                if v.get("kind") == "report":
                    return tok
            return None

        token = await s.wait_for(first_report, INDEX_TIMEOUT, "a progress report of the first index run")
        s.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        await s.wait_for(
            lambda: any(v.get("kind") == "end" for v in s.progress_by_token().get(token, [])),
            INDEX_TIMEOUT,
            "the end of the cancelled run",
        )
        st = await s.wait_for(
            lambda: (x := s.last_status()) and not any(r.get("indexing") for r in x["roots"]) and x,
            INDEX_TIMEOUT,
            "a status that says no run is active",
        )
        (r,) = st["roots"]
        assert r["pendingFiles"] > 0 or r["files"] < 120, (
            f"cancelled on the first report, yet everything was indexed: {st}"
        )
        # Still serving: lexical search over what was written so far.
        res = await s.search("aggregate station readings", mode="lexical")
        assert isinstance(res["hits"], list)
        # A reindex finishes the job.
        out = await s.command("codemem.reindex")
        assert out["roots"][0].get("cancelled") in (None, False), out
        # codemem.reindex blocks until the run is done.
        st = await s.command("codemem.status")
        (r,) = st["roots"]
        assert r["files"] == 120 and r["pendingFiles"] == 0, st
        res = await s.search("describe_station_77")
        assert res["hits"] and rel(res["hits"][0]["uri"], root) == "src/module_077.py", summary(res["hits"], root)
