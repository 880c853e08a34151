#!/usr/bin/env python3
"""Retrieval evaluation for codemem: lexical vs dense vs hybrid on real third-party code.

Run through `scripts/eval` (which finds or builds the binary). For every query file in
eval/queries/*.json this script

  1. obtains the pinned corpus through its package registry (a crate from the cargo registry,
     a Python sdist through pip, an npm tarball through npm), checks the archive hash when one
     is pinned, and copies it into $EVAL_DIR/corpora/<name>-<version>;
  2. indexes it with `codemem --root <corpus> index` under an isolated CODEMEM_HOME whose
     `runtime` and `models` are symlinks to the installed assets;
  3. runs every query in lexical, dense and hybrid mode over all namespaces and scores the
     ranked files against the labels: recall@k, NDCG@k and MRR with binary, file-level
     relevance (hits are deduplicated by path, keeping the first occurrence);
  4. prints a table per corpus, overall and per query type, lists the queries that miss, and
     writes a JSON report with per-query ranks.

It exits non-zero only on errors (a corpus that cannot be fetched, a failing codemem command,
a dense/hybrid answer without the model, a label naming a file absent from the corpus),
never because of metric values. Standard library only.
"""

import argparse
import glob
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

MODES = ("lexical", "dense", "hybrid")
# --first-pass: the index holds first-pass (static table) vectors only.
FIRST_PASS = False
NAMESPACES = ("coding", "documentation", "testing", "architecture")
QUERY_TYPES = ("nl", "ident", "mixed")
# Extensions counted in the "lines" column (roughly what codemem indexes).
TEXT_EXTS = {
    ".rs", ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".go", ".java", ".c", ".h",
    ".cc", ".cpp", ".hpp", ".md", ".markdown", ".rst", ".adoc", ".txt", ".toml", ".yaml", ".yml",
    ".json", ".cfg", ".ini", ".sh", ".html", ".css",
}


SOURCES = ("crate", "pypi-sdist", "npm", "git")


class EvalError(Exception):
    pass


def log(msg):
    print(f"eval: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Query files


def load_query_files(queries_dir, only):
    files = sorted(glob.glob(os.path.join(queries_dir, "*.json")))
    if not files:
        raise EvalError(f"no query files in {queries_dir}")
    sets = []
    seen_ids = set()
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise EvalError(f"cannot read {path}: {e}")
        corpus = data.get("corpus") or {}
        if corpus.get("source") == "git":
            for key in ("repo", "commit"):
                if not corpus.get(key):
                    raise EvalError(f"{path}: corpus.{key} is missing (a git corpus pins owner/name and a commit)")
            corpus.setdefault("package", corpus["repo"])
            corpus.setdefault("version", corpus["commit"][:10])
        for key in ("name", "source", "package", "version"):
            if not corpus.get(key):
                raise EvalError(f"{path}: corpus.{key} is missing")
        if corpus["source"] not in SOURCES:
            raise EvalError(f"{path}: unknown corpus.source {corpus['source']!r}")
        if only and corpus["name"] not in only:
            continue
        queries = data.get("queries") or []
        for q in queries:
            qid = q.get("id")
            if not qid or qid in seen_ids:
                raise EvalError(f"{path}: query id {qid!r} is missing or repeated")
            seen_ids.add(qid)
            if not q.get("query") or not q.get("relevant"):
                raise EvalError(f"{path}: query {qid} needs `query` and `relevant`")
            if q.get("type") not in QUERY_TYPES:
                raise EvalError(f"{path}: query {qid} has type {q.get('type')!r}; use one of {QUERY_TYPES}")
        sets.append({"file": path, "corpus": corpus, "queries": queries})
    if only:
        missing = set(only) - {s["corpus"]["name"] for s in sets}
        if missing:
            raise EvalError(f"unknown corpus name(s): {', '.join(sorted(missing))}")
    return sets


# ---------------------------------------------------------------------------------------------
# Corpora


def run(cmd, cwd=None, env=None, what=None):
    """Runs a command, returns stdout; raises EvalError with stderr on failure."""
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise EvalError(f"{cmd[0]} is not installed (needed to {what or 'run ' + ' '.join(cmd)})")
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
        raise EvalError(f"`{' '.join(cmd)}` failed (exit {p.returncode}):\n{tail}")
    return p.stdout


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_hash(path, expected):
    if not expected:
        return
    got = sha256_file(path)
    if got != expected:
        raise EvalError(f"{path}: sha256 {got} does not match the pinned {expected}")


def safe_members(tar, strip_prefix):
    """Members under `strip_prefix`, renamed without it; rejects absolute and parent paths."""
    out = []
    for m in tar.getmembers():
        name = m.name.replace("\\", "/")
        if not name.startswith(strip_prefix):
            continue
        rel = name[len(strip_prefix):].lstrip("/")
        if not rel or rel.startswith("/") or ".." in rel.split("/"):
            continue
        if not (m.isfile() or m.isdir()):
            continue  # no links or devices from an archive
        m.name = rel
        out.append(m)
    return out


def extract_tar(archive, dest, strip_top=True):
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    with tarfile.open(archive) as tar:
        prefix = ""
        if strip_top:
            tops = {m.name.replace("\\", "/").split("/", 1)[0] for m in tar.getmembers()}
            if len(tops) != 1:
                raise EvalError(f"{archive}: expected one top-level directory, found {sorted(tops)[:5]}")
            prefix = tops.pop() + "/"
        members = safe_members(tar, prefix)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=members, **kwargs)
    return dest


def cargo_home():
    return os.environ.get("CARGO_HOME") or os.path.join(os.path.expanduser("~"), ".cargo")


def find_crate_src(name, version):
    pattern = os.path.join(cargo_home(), "registry", "src", "*", f"{name}-{version}")
    for d in sorted(glob.glob(pattern)):
        if os.path.isfile(os.path.join(d, "Cargo.toml")):
            return d
    return None


def fetch_crate(corpus, downloads):
    name, version = corpus["package"], corpus["version"]
    src = find_crate_src(name, version)
    if src:
        return src
    # Not in the registry yet: let cargo download it through a throwaway project.
    log(f"{name} {version} is not in {cargo_home()}/registry; fetching it with cargo")
    proj = os.path.join(downloads, f"cargo-fetch-{name}-{version}")
    os.makedirs(os.path.join(proj, "src"), exist_ok=True)
    with open(os.path.join(proj, "Cargo.toml"), "w", encoding="utf-8") as f:
        f.write(
            '[package]\nname = "codemem-eval-fetch"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
            f'[dependencies]\n{name} = "={version}"\n\n[workspace]\n'
        )
    with open(os.path.join(proj, "src", "lib.rs"), "w", encoding="utf-8") as f:
        f.write("")
    run(["cargo", "fetch", "--manifest-path", os.path.join(proj, "Cargo.toml")], what=f"download the {name} crate")
    src = find_crate_src(name, version)
    if src:
        return src
    # Cargo keeps the .crate archive even when it has not unpacked it.
    pattern = os.path.join(cargo_home(), "registry", "cache", "*", f"{name}-{version}.crate")
    archives = sorted(glob.glob(pattern))
    if not archives:
        raise EvalError(f"cargo fetch did not produce {name}-{version} under {cargo_home()}/registry")
    return extract_tar(archives[0], os.path.join(downloads, f"{name}-{version}"))


def fetch_sdist(corpus, downloads):
    pkg, version = corpus["package"], corpus["version"]
    candidates = {f"{pkg}-{version}.tar.gz", f"{pkg.replace('-', '_')}-{version}.tar.gz", f"{pkg.lower()}-{version}.tar.gz"}

    def present():
        for c in sorted(candidates):
            p = os.path.join(downloads, c)
            if os.path.isfile(p):
                return p
        return None

    archive = present()
    if not archive:
        log(f"downloading the {pkg} {version} sdist with pip")
        run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"{pkg}=={version}", "-d", downloads, "--quiet"],
            what=f"download the {pkg} sdist",
        )
        archive = present()
        if not archive:
            raise EvalError(f"pip did not leave a {pkg}-{version}.tar.gz in {downloads}")
    check_hash(archive, corpus.get("sha256"))
    return extract_tar(archive, os.path.join(downloads, f"{pkg}-{version}"))


def fetch_npm(corpus, downloads):
    pkg, version = corpus["package"], corpus["version"]
    base = pkg.lstrip("@").replace("/", "-")
    archive = os.path.join(downloads, f"{base}-{version}.tgz")
    if not os.path.isfile(archive):
        log(f"downloading {pkg}@{version} with npm pack")
        out = run(["npm", "pack", f"{pkg}@{version}", "--silent"], cwd=downloads, what=f"download {pkg} from npm")
        name = out.strip().splitlines()[-1].strip() if out.strip() else ""
        if name and os.path.isfile(os.path.join(downloads, name)) and name != os.path.basename(archive):
            os.replace(os.path.join(downloads, name), archive)
        if not os.path.isfile(archive):
            raise EvalError(f"npm pack did not leave {os.path.basename(archive)} in {downloads}")
    check_hash(archive, corpus.get("sha256"))
    return extract_tar(archive, os.path.join(downloads, f"{base}-{version}"))


def fetch_git(corpus, downloads):
    """A full checkout (docs, tests, examples) of one pinned commit of a public GitHub repository.

    The objects come from `$EVAL_GIT_MIRRORS/<owner>+<name>` (a bare repository or one with a
    `repo` git dir inside) when that exists, else from a blobless clone of github.com cached in
    the downloads directory. The tree is written with `git archive`, so nothing of .git is copied.
    """
    owner_name = corpus["repo"]
    commit = corpus["commit"]
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", owner_name) or not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise EvalError(f"corpus {corpus['name']}: repo must be owner/name and commit 40 hex digits")
    slug = owner_name.replace("/", "+")
    dest = os.path.join(downloads, f"{slug}-{commit[:12]}")
    if os.path.isdir(dest):
        return dest
    def has_commit(d):
        return subprocess.run(["git", "--git-dir", d, "cat-file", "-e", commit + "^{commit}"],
                              capture_output=True).returncode == 0

    git_dir = None
    mirrors = os.environ.get("EVAL_GIT_MIRRORS")
    if mirrors:
        for cand in (os.path.join(mirrors, slug, "repo"), os.path.join(mirrors, slug)):
            if os.path.isdir(cand) and has_commit(cand):
                git_dir = cand
                break
    if git_dir is None:
        git_dir = os.path.join(downloads, slug + ".git")
        if not os.path.isdir(git_dir):
            run(["git", "clone", "--bare", "--filter=blob:none", f"https://github.com/{owner_name}.git", git_dir],
                what=f"git clone of {owner_name}")
        if not has_commit(git_dir):
            run(["git", "--git-dir", git_dir, "fetch", "origin", commit], what=f"git fetch of {owner_name}@{commit[:12]}")
    tmp = dest + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    archive = subprocess.run(["git", "--git-dir", git_dir, "archive", "--format=tar", commit], capture_output=True)
    if archive.returncode:
        raise EvalError(f"git archive of {owner_name}@{commit[:12]} failed: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp, members=safe_members(tar, ""))
    os.replace(tmp, dest)
    return dest


def prepare_corpus(corpus, eval_dir, reuse):
    """Returns the absolute path of the corpus copy that gets indexed."""
    dest = os.path.join(eval_dir, "corpora", f"{corpus['name']}-{corpus['version']}")
    if reuse and os.path.isdir(dest):
        return dest
    downloads = os.path.join(eval_dir, "downloads")
    os.makedirs(downloads, exist_ok=True)
    fetch = {"crate": fetch_crate, "pypi-sdist": fetch_sdist, "npm": fetch_npm, "git": fetch_git}[corpus["source"]]
    src = fetch(corpus, downloads)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    # Only regular files and directories: registry sources and archives hold no links we want.
    shutil.copytree(src, dest, symlinks=True, ignore=lambda d, names: [n for n in names if os.path.islink(os.path.join(d, n))])
    return dest


def corpus_size(root):
    files = lines = 0
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for n in names:
            if n.startswith(".") or os.path.splitext(n)[1].lower() not in TEXT_EXTS:
                continue
            try:
                with open(os.path.join(d, n), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            files += 1
            lines += data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return files, lines


# ---------------------------------------------------------------------------------------------
# codemem


def real_home():
    if os.environ.get("CODEMEM_HOME"):
        return os.environ["CODEMEM_HOME"]
    if os.environ.get("XDG_DATA_HOME"):
        return os.path.join(os.environ["XDG_DATA_HOME"], "codemem")
    return os.path.join(os.path.expanduser("~"), ".local", "share", "codemem")


def check_assets(home):
    missing = []
    for sub in ("runtime", "models"):
        p = os.path.join(home, sub)
        if not os.path.isdir(p) or not os.listdir(p):
            missing.append(p)
    if missing:
        raise EvalError(
            f"the codemem model assets are not installed ({', '.join(missing)} missing or empty): "
            "run scripts/setup first"
        )


def isolated_home(eval_dir, corpus_name, assets_home):
    """A CODEMEM_HOME of its own per corpus, sharing the installed runtime and model."""
    home = os.path.join(eval_dir, "home", corpus_name)
    os.makedirs(home, exist_ok=True)
    for sub in ("runtime", "models"):
        link = os.path.join(home, sub)
        target = os.path.abspath(os.path.join(assets_home, sub))
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        if os.path.islink(link) or os.path.isfile(link):
            os.remove(link)
        elif os.path.isdir(link):
            shutil.rmtree(link)
        os.symlink(target, link)
    return home


class Codemem:
    def __init__(self, binary, namespaces=None, ranking=None):
        self.binary = binary
        self.namespaces = namespaces  # None: the configured defaults
        self.ranking = ranking

    def env(self, home):
        env = dict(os.environ)
        env["CODEMEM_HOME"] = home
        # The daemon this eval starts for each corpus home goes away soon after the last search.
        env.setdefault("CODEMEM_DAEMON_IDLE_SECS", "30")
        if self.ranking is not None:
            env["CODEMEM_RANKING"] = self.ranking
        return env

    def stop_daemon(self, home):
        """A daemon keeps the environment (and ranking weights) it started with: stop it so the
        next search starts one with this run's."""
        subprocess.run([self.binary, "daemon", "stop"], env=self.env(home), cwd=home,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def doctor(self, home):
        p = subprocess.run([self.binary, "doctor", "--json"], env=self.env(home), cwd=home,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            data = json.loads(p.stdout)
        except ValueError:
            raise EvalError(f"`codemem doctor --json` printed no JSON (exit {p.returncode}): {p.stderr.strip()[-500:]}")
        bad = [c for c in data.get("checks", []) if not c.get("ok")]
        if bad:
            lines = "\n".join(f"  {c.get('name')}: {c.get('detail')}" for c in bad)
            raise EvalError(f"codemem cannot load the embedding model (run scripts/setup):\n{lines}")

    def index(self, root, home):
        cmd = [self.binary, "--root", root, "index", "--json"]
        started = time.time()
        proc = subprocess.Popen(cmd, env=self.env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stats = None
        last_print = 0.0
        last_pct = -100
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event")
            if kind == "scanned":
                log(f"  {ev.get('files')} files, {ev.get('changed')} to index")
            elif kind == "embed":
                done, total = ev.get("done", 0), max(ev.get("total", 0), 1)
                pct = 100 * done // total
                now = time.time()
                if pct - last_pct >= 25 or now - last_print >= 30 or done == total:
                    log(f"  embedding {done}/{total} chunks ({now - started:.0f}s)")
                    last_pct, last_print = pct, now
            elif kind == "done":
                stats = ev.get("stats")
        err = proc.stderr.read()
        rc = proc.wait()
        if rc != 0:
            raise EvalError(f"`{' '.join(cmd)}` failed (exit {rc}):\n{err.strip()[-2000:]}")
        if stats is None:
            raise EvalError(f"`{' '.join(cmd)}` finished without a `done` event")
        if stats.get("cancelled"):
            raise EvalError(f"indexing {root} was cancelled")
        if stats.get("embed_errors"):
            raise EvalError(f"indexing {root}: {stats['embed_errors']} chunks could not be embedded, dense results would be incomplete")
        stats["wall_s"] = round(time.time() - started, 2)
        return stats

    def status(self, root, home):
        out = run([self.binary, "--root", root, "status", "--json"], env=self.env(home))
        return json.loads(out)

    def context(self, root, home, query, budget):
        cmd = [self.binary, "--root", root, "context", query, "--budget", str(budget), "--json"]
        for ns in self.namespaces or ():
            cmd += ["--ns", ns]
        p = subprocess.run(cmd, env=self.env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise EvalError(f"codemem context failed (exit {p.returncode}) for {query!r}:\n{p.stderr.strip()[-1500:]}")
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise EvalError(f"codemem context printed invalid JSON for {query!r}: {p.stdout[:300]!r}")

    def search(self, root, home, query, mode, k):
        cmd = [self.binary, "--root", root, "search", query, "--mode", mode, "-k", str(k), "--json"]
        for ns in self.namespaces or ():
            cmd += ["--ns", ns]
        started = time.time()
        p = subprocess.run(cmd, env=self.env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall_ms = (time.time() - started) * 1000
        if p.returncode != 0:
            raise EvalError(f"codemem search failed (exit {p.returncode}) for {mode} {query!r}:\n{p.stderr.strip()[-1500:]}")
        try:
            resp = json.loads(p.stdout)
        except ValueError:
            raise EvalError(f"codemem search printed invalid JSON for {mode} {query!r}: {p.stdout[:300]!r}")
        if mode != "lexical" and not resp.get("dense_available", False):
            raise EvalError(f"{mode} search answered without the embedding model (run scripts/setup): {p.stderr.strip()[-500:]}")
        pending = (resp.get("freshness") or {}).get("pending_files", 0)
        if mode != "lexical" and pending and not FIRST_PASS:
            raise EvalError(f"{pending} files of {root} still await embeddings; dense results would be incomplete")
        resp["_wall_ms"] = round(wall_ms, 1)
        return resp


# ---------------------------------------------------------------------------------------------
# Metrics


def split_of(qid):
    """`train` or `report`: a fixed half of the queries, by a hash of the id. Weights are chosen
    on `train`; `report` is what gets quoted."""
    return "train" if int(hashlib.sha1(qid.encode()).hexdigest()[:8], 16) % 2 == 0 else "report"


def dedupe_paths(hits):
    seen = set()
    out = []
    for h in hits:
        p = h.get("path")
        if p is None or p in seen:
            continue
        seen.add(p)
        out.append(h)
    return out


def score(ranked_paths, relevant, k):
    rel = set(relevant)
    top = ranked_paths[:k]
    ranks = {p: (top.index(p) + 1 if p in top else None) for p in relevant}
    found = [r for r in ranks.values() if r is not None]
    recall = len(found) / len(rel)
    dcg = sum(1.0 / math.log2(r + 1) for r in found)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(rel), k) + 1))
    first = min(found) if found else None
    return {
        "ranks": ranks,
        "first_rank": first,
        "recall": recall,
        "ndcg": dcg / idcg if idcg else 0.0,
        "rr": 1.0 / first if first else 0.0,
    }


def aggregate(results):
    """Mean metrics per mode over a list of per-query results."""
    out = {}
    for mode in MODES:
        rows = [r["modes"][mode] for r in results]
        n = len(rows)
        out[mode] = {
            "recall@10": sum(x["recall"] for x in rows) / n if n else 0.0,
            "ndcg@10": sum(x["ndcg"] for x in rows) / n if n else 0.0,
            "mrr": sum(x["rr"] for x in rows) / n if n else 0.0,
            "misses": sum(1 for x in rows if x["first_rank"] is None),
            # Distinct files in the k chunks returned (after deduplication by path).
            "files_per_list": sum(len(x["top"]) for x in rows) / n if n else 0.0,
            "queries": n,
        }
    return out


def verdict(agg):
    h = agg["hybrid"]["ndcg@10"]
    lex = agg["lexical"]["ndcg@10"]
    if "dense" not in agg:
        # --first-pass: the first pass must never make hybrid worse than lexical with ranking.
        return h >= lex
    dense = agg["dense"]["ndcg@10"]
    return h > lex and h > dense


def print_table(title, agg, out=sys.stdout):
    n = agg["hybrid"]["queries"]
    print(f"\n{title}  ({n} queries)", file=out)
    print(f"  {'mode':<8} {'recall@10':>9} {'NDCG@10':>8} {'MRR':>7} {'misses':>7} {'files/list':>10}", file=out)
    best = max(agg[m]["ndcg@10"] for m in MODES)
    for mode in MODES:
        a = agg[mode]
        mark = " *" if a["ndcg@10"] == best and n else ""
        print(f"  {mode:<8} {a['recall@10']:>9.3f} {a['ndcg@10']:>8.3f} {a['mrr']:>7.3f} {a['misses']:>7d} {a['files_per_list']:>10.1f}{mark}", file=out)


def rank_str(r):
    return "-" if r is None else str(r)


# ---------------------------------------------------------------------------------------------
# Main


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(
        prog="scripts/eval",
        description="Retrieval evaluation: recall@10, NDCG@10 and MRR of lexical, dense and hybrid "
        "search on pinned third-party code (crates.io, PyPI, npm).",
    )
    ap.add_argument("--quick", action="store_true", help="only the queries marked quick (the corpora are still indexed)")
    ap.add_argument("--corpus", action="append", default=[], metavar="NAME", help="only this corpus (repeatable)")
    ap.add_argument("--reuse-index", action="store_true",
                    help="keep the corpus copies and indexes of an earlier run in EVAL_DIR instead of re-indexing "
                    "(only valid when the binary's indexing has not changed)")
    ap.add_argument("--bin", default=os.environ.get("CODEMEM_BIN"), help="codemem binary (default $CODEMEM_BIN)")
    ap.add_argument("--eval-dir", default=os.environ.get("EVAL_DIR") or os.path.join(tempfile.gettempdir(), "codemem-eval"),
                    help="work directory for downloads, corpus copies and indexes (default $EVAL_DIR or $TMPDIR/codemem-eval)")
    ap.add_argument("--queries", default=os.path.join(here, "queries"), help="directory of query files")
    ap.add_argument("--report", help="where to write the JSON report (default <eval-dir>/report.json)")
    ap.add_argument("--split", choices=("all", "train", "report"), default="all",
                    help="run only the training half (for choosing weights) or the reporting half of the queries; "
                    "`all` prints both halves side by side")
    ap.add_argument("--all-namespaces", action="store_true",
                    help=f"search {', '.join(NAMESPACES)} instead of the configured default namespaces")
    ap.add_argument("--ranking", metavar="'NAME = X, ...'",
                    help="override [search.ranking] weights for this run (passed as CODEMEM_RANKING)")
    ap.add_argument("--context", type=int, metavar="BUDGET", default=0,
                    help="also ask `codemem context --budget BUDGET` for every query and report how often the bundle "
                         "holds a labelled relevant file (and stays within the budget)")
    ap.add_argument("--hybrid-only", action="store_true",
                    help="search in hybrid mode only and print only the summary (a third of the time; "
                    "for comparing ranking weights)")
    ap.add_argument("--first-pass", action="store_true",
                    help="measure the first pass alone: index with the first pass on and the model's refinement off "
                         "(CODEMEM_EMBED_FIRST_PASS=1 CODEMEM_EMBED_REFINE=0; use its own --eval-dir) and compare hybrid with lexical")
    ap.add_argument("-k", type=int, default=10, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    k = args.k
    global MODES, FIRST_PASS
    if args.first_pass:
        # Indexed and searched with the model's refinement off: dense mode would find nothing.
        FIRST_PASS = True
        os.environ["CODEMEM_EMBED_REFINE"] = "0"
        os.environ["CODEMEM_EMBED_FIRST_PASS"] = "1"
        MODES = ("lexical", "hybrid")
    if args.hybrid_only:
        MODES = ("hybrid",)

    if not args.bin or not os.path.isfile(args.bin) or not os.access(args.bin, os.X_OK):
        raise EvalError(f"codemem binary not found or not executable: {args.bin!r} (set CODEMEM_BIN)")
    started = time.time()
    eval_dir = os.path.abspath(args.eval_dir)
    os.makedirs(eval_dir, exist_ok=True)
    report_path = os.path.abspath(args.report or os.path.join(eval_dir, "report.json"))
    assets = real_home()
    check_assets(assets)
    cm = Codemem(os.path.abspath(args.bin), list(NAMESPACES) if args.all_namespaces else None, args.ranking)

    sets = load_query_files(args.queries, set(args.corpus))

    def wanted(q):
        return (q.get("quick") or not args.quick) and (args.split == "all" or split_of(q["id"]) == args.split)

    total_q = sum(len([q for q in s["queries"] if wanted(q)]) for s in sets)
    log(f"binary {cm.binary}; assets from {assets}; work dir {eval_dir}")
    log(f"{len(sets)} corpora, {total_q} queries{' (quick subset)' if args.quick else ''}, modes {', '.join(MODES)}")

    corpora_report = []
    all_results = []
    for s in sets:
        corpus = s["corpus"]
        label = f"{corpus['name']} {corpus['version']}"
        queries = [q for q in s["queries"] if wanted(q)]
        log(f"{label}: preparing the corpus ({corpus['source']})")
        root = prepare_corpus(corpus, eval_dir, args.reuse_index)
        for q in queries:
            for rel in q["relevant"]:
                if not os.path.isfile(os.path.join(root, rel)):
                    raise EvalError(f"{s['file']}: query {q['id']} labels {rel}, which is not in {label}")
        files, lines = corpus_size(root)
        home = isolated_home(eval_dir, corpus["name"], assets)
        stamp = os.path.join(home, "eval-index.json")
        if args.reuse_index and os.path.isfile(stamp):
            with open(stamp, encoding="utf-8") as f:
                stats = json.load(f)
            log(f"{label}: reusing the index from {time.ctime(os.path.getmtime(stamp))}")
            if os.path.getmtime(cm.binary) > os.path.getmtime(stamp):
                log(f"{label}: warning: {cm.binary} is newer than this index; changes to chunking or "
                    "embedding are not reflected (drop --reuse-index to re-index)")
        else:
            projects = os.path.join(home, "projects")
            if os.path.isdir(projects):
                shutil.rmtree(projects)
            if os.path.exists(stamp):
                os.remove(stamp)
            cm.doctor(home)
            log(f"{label}: indexing {root}")
            stats = cm.index(root, home)
            with open(stamp, "w", encoding="utf-8") as f:
                json.dump(stats, f)
            log(f"{label}: {stats.get('files_scanned')} files, {stats.get('points_total')} chunks in {stats['wall_s']:.1f}s "
                f"({stats.get('embed_ms', 0) / 1000:.1f}s in the model)")
        try:
            status = cm.status(root, home)
            per_ns = {n.get("name"): {"files": n.get("files"), "chunks": n.get("points")} for n in status.get("namespaces", [])}
        except (EvalError, ValueError):
            per_ns = {}

        log(f"{label}: {len(queries)} queries x {len(MODES)} modes")
        cm.stop_daemon(home)
        results = []
        search_ms = {m: 0.0 for m in MODES}
        for q in queries:
            r = {"id": q["id"], "corpus": corpus["name"], "type": q["type"], "split": split_of(q["id"]), "query": q["query"],
                 "relevant": q["relevant"], "symbol": q.get("symbol"), "modes": {}}
            for mode in MODES:
                resp = cm.search(root, home, q["query"], mode, k)
                hits = dedupe_paths(resp.get("hits") or [])
                paths = [h["path"] for h in hits]
                m = score(paths, q["relevant"], k)
                top = hits[0] if hits else None
                m["top"] = [
                    {"path": h.get("path"), "symbol": h.get("symbol"), "lines": [h.get("start_line"), h.get("end_line")],
                     "namespace": h.get("namespace"), "score": h.get("score")}
                    for h in hits[:k]
                ]
                m["raw_hits"] = len(resp.get("hits") or [])
                m["took_ms"] = resp.get("took_ms")
                m["wall_ms"] = resp["_wall_ms"]
                # For identifier queries: is the first hit the labelled file *and* the labelled symbol?
                if q.get("symbol") and top:
                    sym = top.get("symbol") or ""
                    leaf = sym.replace("::", ".").replace("#", ".").split(".")[-1]
                    m["top_is_symbol"] = top.get("path") in q["relevant"] and leaf == q["symbol"]
                search_ms[mode] += resp["_wall_ms"]
                r["modes"][mode] = m
            if args.context:
                b = cm.context(root, home, q["query"], args.context)
                in_bundle = {p["path"] for p in b.get("pieces", [])}
                r["context"] = {"budget": args.context, "tokens_used": b.get("tokens_used"),
                                "within_budget": (b.get("tokens_used") or 0) <= args.context,
                                "has_relevant": any(f in in_bundle for f in q["relevant"]),
                                "files": len(in_bundle), "omitted": len(b.get("omitted", []))}
            results.append(r)
        cm.stop_daemon(home)
        agg = aggregate(results)
        corpora_report.append({
            "name": corpus["name"], "version": corpus["version"], "source": corpus["source"],
            "language": corpus.get("language"), "root": root, "files": files, "lines": lines,
            "indexed_files": stats.get("files_scanned"), "chunks": stats.get("points_total"),
            "namespaces": per_ns, "index_wall_s": stats.get("wall_s"), "index_stats": stats,
            "search_wall_ms": {m: round(v, 1) for m, v in search_ms.items()},
            "metrics": agg, "hybrid_beats_both": None if args.hybrid_only else verdict(agg),
        })
        all_results.extend(results)

    # ----- report
    if args.hybrid_only:
        write_json(report_path, {
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "binary": cm.binary, "hybrid_only": True,
            "split": args.split, "ranking_override": args.ranking,
            "env_overrides": {k2: v for k2, v in os.environ.items() if k2.startswith("CODEMEM_") and k2 not in ("CODEMEM_HOME", "CODEMEM_BIN")},
            "wall_s": round(time.time() - started, 1), "corpora": corpora_report, "queries": all_results,
        })
        code = summary(all_results, args)
        print(f"\nreport: {report_path}")
        return code
    print("\n=== codemem retrieval evaluation " + ("(quick) " if args.quick else "") + "===")
    print(f"binary: {cm.binary}")
    print(f"relevance: file-level, binary; the {k} hits of each search deduplicated by path (files/list = distinct "
          f"files left); misses = queries with no relevant file; namespaces: {', '.join(cm.namespaces) if cm.namespaces else 'the configured defaults'}"
          + (f"; ranking override: {args.ranking}" if args.ranking else ""))
    print("\ncorpora:")
    for c in corpora_report:
        print(f"  {c['name']:<10} {c['version']:<9} {c['language'] or '':<11} {c['files']:>4} files {c['lines']:>7} lines  "
              f"indexed {c['indexed_files']} files / {c['chunks']} chunks in {c['index_wall_s']}s")
    for c in corpora_report:
        print_table(f"{c['name']} {c['version']}", c["metrics"])
    overall = aggregate(all_results)
    print_table("overall", overall)
    by_split = {}
    for sp in ("train", "report"):
        rs = [r for r in all_results if r["split"] == sp]
        if rs and args.split == "all":
            by_split[sp] = aggregate(rs)
            print_table(f"{sp} half ({len(rs)} queries)", by_split[sp])
    by_type = {}
    for t in QUERY_TYPES:
        rs = [r for r in all_results if r["type"] == t]
        if rs:
            by_type[t] = aggregate(rs)
            print_table(f"by query type: {t}", by_type[t])

    ident = [r for r in all_results if r["type"] == "ident" and r.get("symbol")]
    if ident:
        parts = []
        for mode in MODES:
            hit = sum(1 for r in ident if r["modes"][mode].get("top_is_symbol"))
            parts.append(f"{mode} {hit}/{len(ident)}")
        print(f"\nidentifier queries whose first hit is the labelled definition: {', '.join(parts)}")

    print("\nqueries that miss in some mode, or where hybrid ranks worse than the best single mode")
    print("(rank of the first relevant file per mode; - = not in the top 10):")
    shown = 0
    for r in all_results:
        fr = {m: r["modes"][m]["first_rank"] for m in MODES}
        single = [x for x in (fr.get("lexical"), fr.get("dense")) if x is not None]
        if fr["hybrid"] is None:
            worse = bool(single)
        else:
            worse = bool(single) and fr["hybrid"] > min(single)
        if any(v is None for v in fr.values()) or worse:
            shown += 1
            top_h = r["modes"]["hybrid"]["top"][0]["path"] if r["modes"]["hybrid"]["top"] else "-"
            print(f"  {r['id']:<12} {r['type']:<5} L {rank_str(fr.get('lexical')):>2}  D {rank_str(fr.get('dense')):>2}  "
                  f"H {rank_str(fr['hybrid']):>2}  {r['query'][:70]!r}  (hybrid #1: {top_h})")
    if not shown:
        print("  (none)")

    wall = time.time() - started
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "binary": cm.binary,
        "quick": args.quick,
        "k": k,
        "namespaces": list(NAMESPACES),
        "env_overrides": {k2: v for k2, v in os.environ.items() if k2.startswith("CODEMEM_") and k2 not in ("CODEMEM_HOME", "CODEMEM_BIN")},
        "wall_s": round(wall, 1),
        "corpora": corpora_report,
        "overall": overall,
        "by_type": by_type,
        "by_split": by_split,
        "ranking_override": args.ranking,
        "namespaces_searched": cm.namespaces or "configured defaults",
        "hybrid_beats_both": verdict(overall),
        "queries": all_results,
    }
    write_json(report_path, report)

    o = {m: overall[m]["ndcg@10"] for m in MODES}
    yes = verdict(overall)
    if FIRST_PASS:
        print(f"\nfirst pass: hybrid {'>=' if yes else '<'} lexical on NDCG@10: hybrid {o['hybrid']:.3f}, "
              f"lexical {o['lexical']:.3f}" + ("" if yes else "  <-- the first pass makes hybrid worse"))
        for c in corpora_report:
            cm_ = c["metrics"]
            print(f"  {c['name']:<10} hybrid {cm_['hybrid']['ndcg@10']:.3f}  lexical {cm_['lexical']['ndcg@10']:.3f}")
    else:
        print(f"\nhybrid {'BEATS' if yes else 'does NOT beat'} both lexical and dense on NDCG@10: "
              f"hybrid {o['hybrid']:.3f}, lexical {o['lexical']:.3f}, dense {o['dense']:.3f}"
              + ("" if yes else "  <-- target missed"))
        for c in corpora_report:
            cm_ = c["metrics"]
            print(f"  {c['name']:<10} hybrid {cm_['hybrid']['ndcg@10']:.3f}  lexical {cm_['lexical']['ndcg@10']:.3f}  "
                  f"dense {cm_['dense']['ndcg@10']:.3f}  {'beats both' if c['hybrid_beats_both'] else 'does not beat both'}")
    summary(all_results, args)
    if args.context:
        ctx = [r["context"] for r in all_results if "context" in r]
        held = sum(1 for c in ctx if c["has_relevant"])
        within = sum(1 for c in ctx if c["within_budget"])
        print(f"\nget_context at {args.context} tokens: a labelled relevant file in the bundle for {held}/{len(ctx)} "
              f"queries ({100 * held / max(1, len(ctx)):.1f} %, target >= 90 %); within the budget: {within}/{len(ctx)}; "
              f"median files per bundle {sorted(c['files'] for c in ctx)[len(ctx) // 2] if ctx else 0}")
        for name in sorted({r["corpus"] for r in all_results}):
            cs = [r["context"] for r in all_results if r["corpus"] == name and "context" in r]
            print(f"  {name:<10} {sum(c['has_relevant'] for c in cs)}/{len(cs)}")
    print(f"\nreport: {report_path}")
    print(f"wall time: {wall:.0f}s")
    return 0


def write_json(path: str, report: dict) -> None:
    """Writes the report atomically (a reader never sees half a file)."""
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, path)


def summary(all_results, args):
    """The targets: macro NDCG@10 over corpora, the worst corpus, identifier MRR (per half)."""
    corpora = sorted({r["corpus"] for r in all_results})
    print("\nhybrid NDCG@10 per corpus: " + "  ".join(
        f"{c} {sum(r['modes']['hybrid']['ndcg'] for r in all_results if r['corpus'] == c) / max(1, sum(1 for r in all_results if r['corpus'] == c)):.3f}"
        for c in corpora))
    print("\nmacro NDCG@10 (mean over corpora) / worst corpus / identifier MRR:")
    for sp in ("all", "train", "report"):
        rs = [r for r in all_results if sp == "all" or r["split"] == sp]
        if not rs or (sp != "all" and args.split != "all"):
            continue
        parts = []
        for mode in MODES:
            per = {}
            for r in rs:
                per.setdefault(r["corpus"], []).append(r["modes"][mode]["ndcg"])
            means = {c: sum(v) / len(v) for c, v in per.items()}
            macro = sum(means.values()) / len(means)
            worst = min(means, key=means.get)
            idents = [r["modes"][mode]["rr"] for r in rs if r["type"] == "ident"]
            mrr = sum(idents) / len(idents) if idents else float("nan")
            parts.append(f"{mode} {macro:.3f} / {worst} {means[worst]:.3f} / {mrr:.3f}")
        print(f"  {sp:<7} " + "   ".join(parts))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except EvalError as e:
        print(f"eval: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("eval: interrupted", file=sys.stderr)
        sys.exit(130)
