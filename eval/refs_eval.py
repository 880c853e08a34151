#!/usr/bin/env python3
"""Reference-finding evaluation: `codemem refs` against real language servers.

For each corpus (a checkout on disk) the harness samples functions, methods and classes defined
in its non-test source files (seeded, so every run asks about the same definitions), asks a
language server for their references (`textDocument/references`, `includeDeclaration: false`)
-- pyright for Python, typescript-language-server (tsserver) for TypeScript/JavaScript -- and
compares the (path, line) sets with what `codemem refs NAME --path P --line L --json` returns:
micro and macro precision and recall per corpus and overall, next to a plain word-match ("grep")
baseline. A JSON report keeps every definition's two sets and their differences.

The language servers are installed with npm into a cache directory (`--node-dir`); their answers
are cached beside the report (`--ls-only` fills the cache, `--reuse-ls` reads it), so
re-measuring a codemem change does not re-query them.

Exits non-zero only on errors (npm or a language server missing or failing, a failing `codemem`
command), never because of the figures.
"""

import argparse
import ast
import collections
import io
import json
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import tokenize
import urllib.parse
import urllib.request

# Exact versions, known to work together on Node 20 (typescript-language-server 6 needs Node 22;
# typescript 6/7 are not what the 5.x server expects).
# The eval's own error type and codemem-home helpers (eval.py beside this file), so a corpus's
# isolated home is made one way.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval import EvalError, check_assets, isolated_home, real_home  # noqa: E402

NPM_PINS = {
    "pyright": "1.1.414",
    "typescript-language-server": "5.1.3",
    "typescript": "5.9.3",
}

# Kept out of every eval on purpose (see eval/README.md): they check ranking on unseen code.
FORBIDDEN_CORPORA = ("chi", "express", "serde", "fastapi", "trpc")

DEFAULT_CORPORA = (
    ("flask-2ac89889f4", "python"),
    ("requests-2.32.3", "python"),
    ("jotai-1fae77247a", "typescript"),
)

RECALL_TARGET = 0.9
PRECISION_TARGET = 0.8

# Bumped whenever the sampling or the language-server querying changes, so a stale
# `--reuse-ls` cache is refused instead of silently compared with new samples.
SAMPLER_VERSION = 5

PY_EXTS = (".py", ".pyi")
TS_EXTS = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox",
             ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", "dist", "build", ".next",
             ".cache", "coverage", ".turbo"}
# Directories whose code is not the project's source: definitions are not sampled there (their
# references still count).
NON_SOURCE_DIRS = {"test", "tests", "testing", "__tests__", "__test__", "e2e", "spec", "specs", "fixtures",
                   "docs", "doc", "examples", "example", "benchmarks", "benchmark", "bench", "website",
                   "scripts", "template", "templates"}
FOREIGN_SEGMENTS = {"node_modules", "site-packages", "dist-packages", "typeshed", "typeshed-fallback", ".venv", "venv"}
WORD_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def log(msg):
    print(f"refs-eval: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Corpus files


def lang_exts(lang):
    return PY_EXTS if lang == "python" else TS_EXTS


def walk_files(root, exts):
    """Relative paths (forward slashes) of files with these extensions, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for fn in filenames:
            if fn.endswith(exts):
                rel = os.path.relpath(os.path.join(dirpath, fn), root).replace(os.sep, "/")
                out.append(rel)
    return sorted(out)


def is_source_file(rel, lang):
    parts = rel.split("/")
    if any(p.lower() in NON_SOURCE_DIRS for p in parts[:-1]):
        return False
    fn = parts[-1]
    if lang == "python":
        return fn.endswith(".py") and not (fn.startswith("test_") or fn.endswith("_test.py") or fn == "conftest.py"
                                           or fn == "setup.py" or fn == "noxfile.py")
    if fn.endswith(".d.ts") or fn.endswith(".d.mts") or fn.endswith(".d.cts"):
        return False
    stem = fn.split(".")
    return not ({"test", "spec", "bench", "stories", "config"} & set(stem[1:-1]))


class FileCache:
    def __init__(self, root):
        self.root = root
        self._lines = {}

    def lines(self, rel):
        if rel not in self._lines:
            try:
                with open(os.path.join(self.root, rel), encoding="utf-8", errors="replace") as f:
                    self._lines[rel] = f.read().splitlines()
            except OSError:
                self._lines[rel] = []
        return self._lines[rel]

    def line(self, rel, n):
        ls = self.lines(rel)
        return ls[n - 1] if 0 < n <= len(ls) else ""


def word_index(files, fc):
    """name -> {path: sorted lines} over every file, for occurrence counts and the grep baseline."""
    idx = collections.defaultdict(lambda: collections.defaultdict(set))
    for rel in files:
        for i, text in enumerate(fc.lines(rel), 1):
            for m in WORD_RE.finditer(text):
                idx[m.group(0)][rel].add(i)
    return idx


def utf16_len(s):
    return sum(2 if ord(c) > 0xFFFF else 1 for c in s)


def utf16_to_index(s, col16):
    n = 0
    for i, c in enumerate(s):
        if n >= col16:
            return i
        n += 2 if ord(c) > 0xFFFF else 1
    return len(s)


def python_code_mask(text):
    """The lines of a Python file with comments and string literals blanked, so a word still
    present at its column is code."""
    lines = text.splitlines(keepends=True)
    chars = [list(ln) for ln in lines]
    kinds = {tokenize.STRING, tokenize.COMMENT}
    if hasattr(tokenize, "FSTRING_MIDDLE"):
        kinds.add(tokenize.FSTRING_MIDDLE)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type not in kinds:
                continue
            (sr, sc), (er, ec) = tok.start, tok.end
            for r in range(sr, er + 1):
                if r - 1 >= len(chars):
                    break
                row = chars[r - 1]
                a = sc if r == sr else 0
                b = ec if r == er else len(row)
                for i in range(a, min(b, len(row))):
                    if row[i] not in "\r\n":
                        row[i] = " "
    except (tokenize.TokenError, SyntaxError):
        pass
    return ["".join(c).rstrip("\r\n") for c in chars]


def ts_code_mask(text):
    """The same for TypeScript/JavaScript: comments, strings and the literal parts of template
    strings blanked (`${...}` stays code). Regular-expression literals are not recognised."""
    out = list(text)
    n = len(text)
    i = 0
    braces = []  # one counter per open `${` of a template string

    def blank(a, b):
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    def template(i):
        """From just after a backtick or a closing `}` of `${`: blanks to the end of the
        literal part; returns (next index, True if a `${` was entered)."""
        start = i
        while i < n:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == "`":
                blank(start, i)
                return i + 1, False
            if c == "$" and i + 1 < n and text[i + 1] == "{":
                blank(start, i)
                return i + 2, True
            i += 1
        blank(start, n)
        return n, False

    while i < n:
        c = text[i]
        nx = text[i + 1] if i + 1 < n else ""
        if c == "/" and nx == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif c == "/" and nx == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c in "'\"":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        elif c == "`":
            i, entered = template(i + 1)
            if entered:
                braces.append(0)
        elif c == "{" and braces:
            braces[-1] += 1
            i += 1
        elif c == "}" and braces:
            if braces[-1] == 0:
                braces.pop()
                i, entered = template(i + 1)
                if entered:
                    braces.append(0)
            else:
                braces[-1] -= 1
                i += 1
        else:
            i += 1
    return "".join(out).split("\n")


class Masks:
    def __init__(self, root, lang):
        self.root = root
        self.lang = lang
        self._m = {}

    def line(self, rel, n):
        if rel not in self._m:
            try:
                with open(os.path.join(self.root, rel), encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError:
                text = ""
            self._m[rel] = python_code_mask(text) if self.lang == "python" else ts_code_mask(text)
        ls = self._m[rel]
        return ls[n - 1] if 0 < n <= len(ls) else ""


def hover_text(h):
    """The first line of a hover, without markdown fences: `(method) def name(...` /
    `(property) name: any`."""
    if not h:
        return ""
    c = h.get("contents") if isinstance(h, dict) else None
    if isinstance(c, dict):
        v = c.get("value", "")
    elif isinstance(c, list):
        v = "\n".join(x if isinstance(x, str) else x.get("value", "") for x in c)
    else:
        v = str(c or "")
    lines = [ln.strip() for ln in v.splitlines() if ln.strip() and not ln.strip().startswith("```")]
    return lines[0] if lines else ""


# A hover that says the server could not type the name: pyright's `Unknown` (printed `Any`
# when the corpus sets no typeCheckingMode), tsserver's `any`.
UNRESOLVED_HOVER_RE = re.compile(r":\s*(?:Unknown|Any|any)\s*$")
# A name imported from a module the server cannot resolve: pyright `(import) name: Any`,
# tsserver `import name` (vitepress's `../shared`, generated at build time).
UNRESOLVED_IMPORT_RE = re.compile(r"^(?:\(import\) [\w.]+:\s*(?:Unknown|Any)|import [\w$]+)$")


# ---------------------------------------------------------------------------------------------
# Definitions


def python_definitions(root, files, fc):
    """Module-level functions and classes, and methods of (nested) classes, from Python's ast."""
    defs = []
    for rel in files:
        if not is_source_file(rel, "python"):
            continue
        try:
            with open(os.path.join(root, rel), "rb") as f:
                tree = ast.parse(f.read(), filename=rel)
        except (SyntaxError, ValueError):
            continue
        seen = set()

        def decorated_away(node):
            for d in getattr(node, "decorator_list", ()):
                if isinstance(d, ast.Name) and d.id == "overload":
                    return True
                if isinstance(d, ast.Attribute) and d.attr in ("overload", "setter", "deleter"):
                    return True
            return False

        def add(node, kind, qual):
            name = node.name
            if name.startswith("__") and name.endswith("__"):
                return
            if decorated_away(node) or qual in seen:
                return
            seen.add(qual)
            text = fc.line(rel, node.lineno)
            m = re.compile(r"\b(?:def|class)\s+(" + re.escape(name) + r")\b").search(text, node.col_offset)
            if not m:
                return
            defs.append({"name": name, "qualname": qual, "kind": kind, "path": rel, "line": node.lineno,
                         "column": utf16_len(text[:m.start(1)]) + 1, "end_line": getattr(node, "end_lineno", node.lineno)})

        def visit_body(body, prefix, in_class):
            for node in body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    add(node, "method" if in_class else "function", prefix + node.name)
                elif isinstance(node, ast.ClassDef):
                    add(node, "class", prefix + node.name)
                    visit_body(node.body, prefix + node.name + ".", True)
                elif isinstance(node, ast.If):
                    visit_body(node.body, prefix, in_class)
                    visit_body(node.orelse, prefix, in_class)
                elif isinstance(node, ast.Try):
                    visit_body(node.body, prefix, in_class)
                    for h in node.handlers:
                        visit_body(h.body, prefix, in_class)
                    visit_body(node.orelse, prefix, in_class)

        visit_body(tree.body, "", False)
    return defs


# LSP SymbolKind
SK_CLASS, SK_METHOD, SK_PROPERTY, SK_FUNCTION, SK_VARIABLE, SK_CONSTANT = 5, 6, 7, 12, 13, 14
VAR_DECL_RE = re.compile(r"(?:^|[^\w$])(?:const|let|var)\s+$")
FUNC_VALUE_RE = re.compile(r"^[^=;]*?=\s*(?:async\s+)?(?:function\b|\(|<[A-Za-z]|[A-Za-z_$][\w$]*\s*=>)")


def ts_definitions(ls, root, files, fc):
    """Top-level functions (declarations and `const f = (...) =>`), classes and class methods,
    from the server's textDocument/documentSymbol."""
    defs = []
    for rel in files:
        if not is_source_file(rel, "typescript"):
            continue
        ls.open(rel)
        syms = ls.request("textDocument/documentSymbol", {"textDocument": {"uri": ls.uri(rel)}}) or []
        seen = set()

        def add(sym, kind, qual):
            if "selectionRange" not in sym:
                return
            start = sym["selectionRange"]["start"]
            line = start["line"] + 1
            text = fc.line(rel, line)
            col = utf16_to_index(text, start["character"])
            if text[col:col + len(sym["name"])] != sym["name"] or qual in seen:
                return
            seen.add(qual)
            defs.append({"name": sym["name"], "qualname": qual, "kind": kind, "path": rel, "line": line,
                         "column": start["character"] + 1, "end_line": sym["range"]["end"]["line"] + 1})

        for sym in syms:
            k = sym.get("kind")
            name = sym.get("name", "")
            if not re.fullmatch(r"[A-Za-z_$][\w$]*", name):
                continue
            if k == SK_FUNCTION:
                add(sym, "function", name)
            elif k == SK_CLASS:
                add(sym, "class", name)
                for child in sym.get("children") or ():
                    cname = child.get("name", "")
                    if child.get("kind") == SK_METHOD and re.fullmatch(r"[A-Za-z_$][\w$]*", cname) and cname != "constructor":
                        add(child, "method", name + "." + cname)
            elif k in (SK_VARIABLE, SK_CONSTANT) and "selectionRange" in sym:
                start = sym["selectionRange"]["start"]
                text = fc.line(rel, start["line"] + 1)
                col = utf16_to_index(text, start["character"])
                if VAR_DECL_RE.search(text[:col]) and FUNC_VALUE_RE.match(text[col + len(name):]):
                    add(sym, "function", name)
        # Files stay open: closing the last file of a project makes tsserver drop and later
        # reload it, and answers given while it reloads are partial.
    return defs


def sample_definitions(defs, words, n, seed, corpus_name):
    """n definitions, seeded: those whose name occurs at least twice in the tree first."""
    for d in defs:
        d["occurrences"] = sum(len(v) for v in words.get(d["name"], {}).values())
    defs = sorted(defs, key=lambda d: (d["path"], d["line"], d["qualname"]))
    rng = random.Random(f"{seed}:{corpus_name}")
    rng.shuffle(defs)
    preferred = [d for d in defs if d["occurrences"] >= 2]
    rest = [d for d in defs if d["occurrences"] < 2]
    picked = (preferred + rest)[:n]
    return sorted(picked, key=lambda d: (d["path"], d["line"]))


# ---------------------------------------------------------------------------------------------
# Language servers over stdio


class LspError(EvalError):
    pass


class LspClient:
    """A minimal JSON-RPC client: Content-Length framing, a reader thread, answers to the
    requests servers send (configuration, capability registration, progress tokens)."""

    def __init__(self, cmd, root, name, settings, stderr_path, env=None):
        self.root = os.path.realpath(root)
        self.name = name
        self.settings = settings
        self.opened = {}
        self.diagnosed = set()
        self.diag_cond = threading.Condition()
        self.messages = collections.deque(maxlen=50)
        self._next = 1
        self._pending = {}
        self._wlock = threading.Lock()
        self._dead = None
        self._stderr = open(stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(cmd, cwd=self.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, env=env)
        except OSError as e:
            raise LspError(f"{name}: cannot start {cmd[0]}: {e}")
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # -- transport

    def _send(self, msg):
        body = json.dumps(msg).encode("utf-8")
        with self._wlock:
            try:
                self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                raise LspError(f"{self.name} is gone ({e}); see {self._stderr.name}")

    def _read_loop(self):
        f = self.proc.stdout
        try:
            while True:
                length = None
                while True:
                    line = f.readline()
                    if not line:
                        raise EOFError("end of stream")
                    line = line.strip()
                    if not line:
                        break
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                if length is None:
                    continue
                msg = json.loads(f.read(length))
                self._dispatch(msg)
        except Exception as e:  # noqa: BLE001 - the reason is handed to every waiter
            self._dead = f"{self.name} closed its output ({e}, exit {self.proc.poll()}); see {self._stderr.name}"
            for q in list(self._pending.values()):
                q.put({"error": {"message": self._dead}})
            with self.diag_cond:
                self.diag_cond.notify_all()

    def _dispatch(self, msg):
        if "method" in msg and "id" in msg:
            self._send({"jsonrpc": "2.0", "id": msg["id"], "result": self._answer(msg["method"], msg.get("params"))})
        elif "id" in msg:
            q = self._pending.pop(msg["id"], None)
            if q is not None:
                q.put(msg)
        elif msg.get("method") == "textDocument/publishDiagnostics":
            uri = msg.get("params", {}).get("uri", "")
            with self.diag_cond:
                self.diagnosed.add(self.path_of(uri))
                self.diag_cond.notify_all()
        elif msg.get("method") in ("window/logMessage", "window/showMessage"):
            self.messages.append(msg.get("params", {}).get("message", ""))

    def _answer(self, method, params):
        if method == "workspace/configuration":
            out = []
            for item in (params or {}).get("items", []):
                node = self.settings
                for part in (item.get("section") or "").split("."):
                    node = node.get(part) if isinstance(node, dict) and part else node
                out.append(node)
            return out
        if method == "workspace/workspaceFolders":
            return [{"uri": self.uri(""), "name": os.path.basename(self.root)}]
        return None  # client/registerCapability, window/workDoneProgress/create, showMessageRequest...

    def request(self, method, params, timeout=120):
        if self._dead:
            raise LspError(self._dead)
        q = queue.Queue()
        rid = self._next
        self._next += 1
        self._pending[rid] = q
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        try:
            msg = q.get(timeout=timeout)
        except queue.Empty:
            self._pending.pop(rid, None)
            self.notify("$/cancelRequest", {"id": rid})
            raise LspError(f"{self.name}: no answer to {method} within {timeout}s")
        if "error" in msg:
            raise LspError(f"{self.name}: {method} failed: {msg['error'].get('message')}")
        return msg.get("result")

    def notify(self, method, params):
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    # -- documents

    def uri(self, rel):
        return "file://" + urllib.parse.quote(os.path.join(self.root, rel) if rel else self.root)

    def path_of(self, uri):
        """Corpus-relative path of a file:// URI, or None outside the corpus (or in foreign code)."""
        if not uri.startswith("file://"):
            return None
        p = os.path.realpath(urllib.request.url2pathname(urllib.parse.urlparse(uri).path))
        if p != self.root and not p.startswith(self.root + os.sep):
            return None
        rel = os.path.relpath(p, self.root).replace(os.sep, "/")
        if FOREIGN_SEGMENTS & set(rel.split("/")):
            return None
        return rel

    def open(self, rel):
        if rel in self.opened:
            return
        with open(os.path.join(self.root, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        self.opened[rel] = 1
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": self.uri(rel), "languageId": language_id(rel), "version": 1, "text": text}})

    def close(self, rel):
        if self.opened.pop(rel, None):
            self.notify("textDocument/didClose", {"textDocument": {"uri": self.uri(rel)}})

    def wait_diagnostics(self, rels, timeout):
        """Waits until the server published diagnostics for these files (its analysis of them is
        done) or the timeout passes; returns how many are still outstanding."""
        deadline = time.time() + timeout
        want = set(rels)
        with self.diag_cond:
            while not self._dead:
                left = want - self.diagnosed
                if not left or time.time() >= deadline:
                    return len(left)
                self.diag_cond.wait(timeout=min(1.0, max(0.0, deadline - time.time())))
        raise LspError(self._dead)

    def shutdown(self):
        try:
            if not self._dead:
                self.request("shutdown", None, timeout=15)
                self.notify("exit", None)
        except LspError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def language_id(rel):
    if rel.endswith((".py", ".pyi")):
        return "python"
    if rel.endswith((".tsx",)):
        return "typescriptreact"
    if rel.endswith((".jsx",)):
        return "javascriptreact"
    if rel.endswith((".js", ".mjs", ".cjs")):
        return "javascript"
    return "typescript"


CLIENT_CAPABILITIES = {
    "workspace": {"configuration": True, "workspaceFolders": True, "didChangeConfiguration": {"dynamicRegistration": True}},
    "textDocument": {
        "synchronization": {"didSave": False, "dynamicRegistration": False},
        "references": {"dynamicRegistration": False},
        "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
        "publishDiagnostics": {"relatedInformation": False},
    },
    "window": {"workDoneProgress": False},
    "general": {"positionEncodings": ["utf-16"]},
}


def start_server(lang, root, node_dir, log_dir, corpus_name):
    bin_dir = os.path.join(node_dir, "node_modules", ".bin")
    if lang == "python":
        cmd = [os.path.join(bin_dir, "pyright-langserver"), "--stdio"]
        # The interpreter running this harness: its site-packages give pyright the types of the
        # corpus's dependencies (werkzeug, click, urllib3), which decide what attribute calls
        # it can resolve.
        settings = {"python": {"pythonPath": sys.executable, "analysis": {
            "autoSearchPaths": True, "useLibraryCodeForTypes": True, "diagnosticMode": "openFilesOnly",
            "typeCheckingMode": "off"}}}
        init_options = {}
        name = "pyright"
    else:
        cmd = [os.path.join(bin_dir, "typescript-language-server"), "--stdio"]
        settings = {}
        init_options = {
            # No syntax server: while the project loads it answers from the open files only
            # (partial references); the semantic server makes requests wait for the project.
            "tsserver": {"path": os.path.join(node_dir, "node_modules", "typescript", "lib"), "useSyntaxServer": "never"},
            "maxTsServerMemory": 3072,
            "preferences": {"includeCompletionsForModuleExports": False},
        }
        name = "typescript-language-server"
    if not os.access(cmd[0], os.X_OK):
        raise LspError(f"{cmd[0]} is missing: the npm install into {node_dir} did not complete")
    os.makedirs(log_dir, exist_ok=True)
    ls = LspClient(cmd, root, name, settings, os.path.join(log_dir, f"{corpus_name}.{name}.stderr.log"))
    folder = {"uri": ls.uri(""), "name": os.path.basename(ls.root)}
    ls.request("initialize", {
        "processId": os.getpid(), "rootUri": folder["uri"], "rootPath": ls.root, "workspaceFolders": [folder],
        "capabilities": CLIENT_CAPABILITIES, "initializationOptions": init_options,
        "clientInfo": {"name": "codemem-refs-eval"},
    }, timeout=120)
    ls.notify("initialized", {})
    if settings:
        ls.notify("workspace/didChangeConfiguration", {"settings": settings})
    return ls


# ---------------------------------------------------------------------------------------------
# npm


def install_servers(node_dir):
    npm = shutil.which("npm")
    if not npm:
        raise EvalError("npm is not installed: the language servers (pyright, typescript-language-server) are "
                        "installed with it. Install Node.js >= 20 with npm (e.g. `apt-get install nodejs npm`), "
                        "or run with --reuse-ls against an earlier run's cache.")
    os.makedirs(node_dir, exist_ok=True)
    want = [f"{k}@{v}" for k, v in NPM_PINS.items()]
    if installed_versions(node_dir) != NPM_PINS:
        log(f"npm install --prefix {node_dir} {' '.join(want)}")
        p = subprocess.run([npm, "install", "--prefix", node_dir, "--no-audit", "--no-fund", "--save-exact", *want],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise EvalError(f"npm install failed (exit {p.returncode}):\n{p.stdout.strip()[-2000:]}")
    got = installed_versions(node_dir)
    if got != NPM_PINS:
        raise EvalError(f"npm installed {got}, expected {NPM_PINS}")
    got["python (for pyright)"] = sys.executable
    node = shutil.which("node")
    node_v = subprocess.run([node, "--version"], stdout=subprocess.PIPE, text=True).stdout.strip() if node else "?"
    return {**got, "node": node_v}


def installed_versions(node_dir):
    out = {}
    for pkg in NPM_PINS:
        try:
            with open(os.path.join(node_dir, "node_modules", pkg, "package.json"), encoding="utf-8") as f:
                out[pkg] = json.load(f).get("version")
        except (OSError, ValueError):
            out[pkg] = None
    return out


# ---------------------------------------------------------------------------------------------
# TypeScript scope: the files the server can connect to a definition


def ts_projects(root, node_dir):
    """{tsconfig/jsconfig path: set of corpus files in its program} from `tsc --showConfig`."""
    tsc = os.path.join(node_dir, "node_modules", "typescript", "bin", "tsc")
    projects = {}
    for rel in walk_files(root, ("tsconfig.json", "jsconfig.json")):
        if os.path.basename(rel) not in ("tsconfig.json", "jsconfig.json"):
            continue
        p = subprocess.run(["node", tsc, "--showConfig", "-p", os.path.join(root, rel)], cwd=root,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            log(f"  {rel}: tsc --showConfig failed, ignoring it: {(p.stdout + p.stderr).strip()[:200]}")
            continue
        try:
            cfg = json.loads(p.stdout)
        except ValueError:
            continue
        base = os.path.dirname(os.path.join(root, rel))
        files = set()
        for f in cfg.get("files") or ():
            r = os.path.relpath(os.path.normpath(os.path.join(base, f)), root).replace(os.sep, "/")
            if not r.startswith("../"):
                files.add(r)
        if files:
            projects[rel] = files
    return projects


def ts_scope_of(def_path, projects, all_files):
    """The files of every project whose program holds the definition's file; every TS/JS file of
    the corpus when none does (the server then uses an inferred project)."""
    scope = set()
    for files in projects.values():
        if def_path in files:
            scope |= files
    return (scope & set(all_files)) or set(all_files)


# ---------------------------------------------------------------------------------------------
# The language-server side


def ls_side(corpus, node_dir, work_dir, n_defs, seed, ls_timeout, hover_budget):
    root, lang, name = corpus["root"], corpus["lang"], corpus["name"]
    fc = FileCache(root)
    files = walk_files(root, lang_exts(lang))
    if not files:
        raise EvalError(f"{name}: no {lang} files under {root}")
    words = word_index(files, fc)
    masks = Masks(root, lang)
    t0 = time.time()
    ls = start_server(lang, root, node_dir, os.path.join(work_dir, "logs"), name)
    timing = {"start_s": round(time.time() - t0, 2)}
    try:
        projects = {}
        if lang == "python":
            defs = python_definitions(root, files, fc)
            # pyright searches the files of its program: [tool.pyright] include may leave tests out
            # (flask's does), so every Python file is opened, which puts it in the program.
            t1 = time.time()
            for rel in files:
                ls.open(rel)
            left = ls.wait_diagnostics(files, timeout=max(60, ls_timeout * 3))
            timing["warmup_s"] = round(time.time() - t1, 2)
            log(f"{name}: pyright analysed {len(files) - left}/{len(files)} open files in {timing['warmup_s']}s")
        else:
            projects = ts_projects(root, node_dir)
            log(f"{name}: {len(projects)} TypeScript project(s): "
                + ", ".join(f"{k} ({len(v)} files)" for k, v in sorted(projects.items())))
            t1 = time.time()
            defs = ts_definitions(ls, root, files, fc)
            timing["symbols_s"] = round(time.time() - t1, 2)
        if not defs:
            raise EvalError(f"{name}: no definitions found in non-test source files")
        sample = sample_definitions(defs, words, n_defs, seed, name)
        log(f"{name}: {len(defs)} definitions in source files, {len(sample)} sampled "
            f"({sum(1 for d in sample if d['occurrences'] >= 2)} with a name occurring twice or more)")

        if lang != "python":
            # Load every project once (opening a file loads its configured project), then warm
            # up: the first request waits for the project graph (seconds), so it is not charged
            # to a sampled definition. Answers are taken once two in a row agree -- with
            # tsserver's syntax server on (the default) early answers are empty or cover only
            # the open files; it is off here, and the check stays as a guard.
            t1 = time.time()
            for cfg, pfiles in sorted(projects.items()):
                first = sorted(f for f in pfiles if not f.endswith(".d.ts"))[:1]
                for rel in first:
                    ls.open(rel)
            # (a function or class: a method may rightly have no references)
            warm = max(sample, key=lambda d: (d["kind"] != "method", d["occurrences"]))
            ls.open(warm["path"])
            got, _ = ts_stable_references(ls, warm, 30)
            timing["warmup_s"] = round(time.time() - t1, 2)
            log(f"{name}: tsserver warm-up {timing['warmup_s']}s ({len(got)} references of {warm['name']})")

        t1 = time.time()
        for i, d in enumerate(sample, 1):
            ls.open(d["path"])
            tq = time.time()
            if lang == "python":
                refs = ls_references(ls, d)
            else:
                refs, d["ls_attempts"] = ts_stable_references(ls, d, ls_timeout if d["occurrences"] >= 2 else 0)
            d["ls_ms"] = round((time.time() - tq) * 1000)
            scope = None
            if lang != "python":
                d["scope"] = "projects" if any(d["path"] in v for v in projects.values()) else "all"
                scope = ts_scope_of(d["path"], projects, files)
            # Other declarations of the same symbol are references to pyright (the `@overload`
            # signatures of the sampled implementation, a property's setter): they are not
            # references to codemem, so they are set aside.
            decl = declaration_re(d["name"])
            d["ls_declarations"] = [{"path": p, "line": ln, "text": fc.line(p, ln).strip()[:200]}
                                    for (p, ln, c) in refs if decl.search(masks.line(p, ln))]
            refs = [(p, ln, c) for (p, ln, c) in refs if not decl.search(masks.line(p, ln))]
            d["ls_refs"] = [{"path": p, "line": ln, "column": c, "text": fc.line(p, ln).strip()[:200]}
                            for (p, ln, c) in refs]
            th = time.time()
            d["non_refs"] = classify_non_refs(ls, d, {(p, ln) for (p, ln, _) in refs}, words, scope, masks, fc,
                                              [hover_budget])
            d["hover_ms"] = round((time.time() - th) * 1000)
            if i % 10 == 0:
                log(f"{name}: {i}/{len(sample)} definitions queried")
        timing["queries_s"] = round(time.time() - t1, 2)
        timing["total_s"] = round(time.time() - t0, 2)
    finally:
        ls.shutdown()
    return {
        "corpus": name, "root": root, "lang": lang, "sampler_version": SAMPLER_VERSION, "seed": seed,
        "n_defs": n_defs, "server": ls.name, "files": len(files), "definitions_found": len(defs),
        "projects": {k: sorted(v) for k, v in projects.items()}, "timing": timing, "definitions": sample,
    }


def classify_non_refs(ls, d, ls_lines, words, scope, masks, fc, budget):
    """Every line where the name occurs as a word (in scope, but the definition's own) that the
    server did not report, with what the server says about it: `text` (only in comments or
    strings), `other` (the server resolves the name to something else: its hover), `unresolved`
    (an attribute access `x.name` whose receiver the server cannot type -- the hover says
    `Unknown`/`Any` (pyright) or `any` (tsserver), or nothing -- so it can neither confirm nor
    refute a reference there; a bare name counts as unresolved only without any hover or when
    it is imported from a module the server cannot resolve),
    `unchecked` (over the hover budget)."""
    name = d["name"]
    word = re.compile(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])")
    out = []
    for p, ln in sorted(grep_set(name, words, scope, d)):
        if (p, ln) in ls_lines:
            continue
        text, mask = fc.line(p, ln), masks.line(p, ln)
        cls, hover = "text", None
        for m in word.finditer(text):
            if mask[m.start():m.end()] != name:
                continue
            if budget[0] <= 0:
                cls, hover = "unchecked", None
                break
            budget[0] -= 1
            ls.open(p)
            t = hover_text(ls.request("textDocument/hover", {
                "textDocument": {"uri": ls.uri(p)},
                "position": {"line": ln - 1, "character": utf16_len(text[:m.start()])}}))
            attribute = mask[:m.start()].rstrip().endswith(".")
            if not t or (attribute and UNRESOLVED_HOVER_RE.search(t)) or UNRESOLVED_IMPORT_RE.match(t):
                cls, hover = "unresolved", t
                break
            cls, hover = "other", t
        out.append({"path": p, "line": ln, "class": cls, "hover": (hover or "")[:160]})
    return out


def declaration_re(name):
    return re.compile(r"(?:\bdef|\bclass|\bfunction\s*\*?)\s+" + re.escape(name) + r"(?![\w$])")


def ts_stable_references(ls, d, timeout):
    """tsserver's answer once two in a row agree; while it is empty and the name occurs
    elsewhere, asks again for up to `timeout` seconds (a project still loading answers nothing)."""
    deadline = time.time() + timeout
    prev = ls_references(ls, d)
    attempts = 1
    while True:
        if not prev and time.time() >= deadline:
            return prev, attempts
        if not prev:
            time.sleep(0.5)
        cur = ls_references(ls, d)
        attempts += 1
        if cur == prev and (cur or time.time() >= deadline):
            return cur, attempts
        if attempts >= 8 and cur:
            log(f"warning: tsserver keeps changing its answer for {d['name']} ({d['path']}:{d['line']}); "
                f"keeping the last ({len(cur)} lines)")
            return cur, attempts
        prev = cur


def ls_references(ls, d):
    """(path, line, column) of the references the server reports, inside the corpus, deduplicated."""
    res = ls.request("textDocument/references", {
        "textDocument": {"uri": ls.uri(d["path"])},
        "position": {"line": d["line"] - 1, "character": d["column"] - 1},
        "context": {"includeDeclaration": False},
    }) or []
    out = {}
    for loc in res:
        rel = ls.path_of(loc.get("uri", ""))
        if rel is None:
            continue
        start = loc["range"]["start"]
        key = (rel, start["line"] + 1)
        out.setdefault(key, start["character"] + 1)
    return sorted((p, ln, c) for (p, ln), c in out.items())


# ---------------------------------------------------------------------------------------------
# The codemem side


class Codemem:
    def __init__(self, binary, embed):
        self.binary = binary
        self.embed = embed

    def env(self, home):
        env = dict(os.environ)
        env["CODEMEM_HOME"] = home
        env.setdefault("CODEMEM_DAEMON_IDLE_SECS", "30")
        if not self.embed:
            # References come from the lexical side of the index: leave the model out.
            env.setdefault("CODEMEM_EMBED_REFINE", "0")
        return env

    def stop_daemon(self, home):
        subprocess.run([self.binary, "daemon", "stop"], env=self.env(home), cwd=home,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def index(self, root, home):
        cmd = [self.binary, "--root", root, "index", "--json"]
        t0 = time.time()
        p = subprocess.run(cmd, env=self.env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise EvalError(f"`{' '.join(cmd)}` failed (exit {p.returncode}):\n{p.stderr.strip()[-2000:]}")
        stats = {}
        for line in p.stdout.splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict) and ev.get("event") == "done":
                stats = ev.get("stats") or {}
        stats["wall_s"] = round(time.time() - t0, 2)
        return stats

    def refs(self, root, home, d):
        cmd = [self.binary, "--root", root, "refs", d["name"], "--path", d["path"], "--line", str(d["line"]), "--limit", "2000", "--json"]
        t0 = time.time()
        p = subprocess.run(cmd, env=self.env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ms = round((time.time() - t0) * 1000)
        if p.returncode != 0:
            raise EvalError(f"`{' '.join(cmd)}` failed (exit {p.returncode}):\n{p.stderr.strip()[-1500:]}")
        try:
            data = json.loads(p.stdout)
        except ValueError:
            raise EvalError(f"`{' '.join(cmd)}` printed invalid JSON: {p.stdout[:300]!r}")
        if not isinstance(data, dict) or not isinstance(data.get("references"), list):
            raise EvalError(f"`{' '.join(cmd)}` printed JSON without a `references` list: {p.stdout[:300]!r}")
        return data, ms


def norm_path(root, p):
    if os.path.isabs(p):
        p = os.path.relpath(p, root)
    p = p.replace(os.sep, "/")
    while p.startswith("./"):
        p = p[2:]
    return p


# ---------------------------------------------------------------------------------------------
# Scoring


def new_counts():
    return {"defs": 0, "zero_ls": 0, "ls": 0, "cm": 0, "tp": 0, "grep": 0, "grep_tp": 0,
            "p_sum": 0.0, "p_n": 0, "r_sum": 0.0, "r_n": 0, "gp_sum": 0.0, "gp_n": 0, "gr_sum": 0.0, "gr_n": 0,
            "exact": 0, "out_of_scope": 0, "errors": 0, "grep_unresolved": 0,
            "truncated": 0, "ls_named": 0, "tp_named": 0, "cm_unresolved": 0, "cm_other": 0, "cm_text": 0,
            "cm_no_name": 0, "cm_unchecked": 0, "cm_definition": 0, "cm_declaration": 0}


def add_counts(c, r):
    c["defs"] += 1
    if r.get("error"):
        c["errors"] += 1
        return
    ls, cm, gr = len(r["ls"]), len(r["cm"]), len(r["grep"])
    tp, gtp = len(r["both"]), r["grep_tp"]
    c["ls"] += ls
    c["cm"] += cm
    c["tp"] += tp
    c["grep"] += gr
    c["grep_tp"] += gtp
    c["out_of_scope"] += len(r.get("cm_out_of_scope", ()))
    c["grep_unresolved"] += r.get("grep_unresolved", 0)
    c["ls_named"] += r.get("ls_named", 0)
    c["truncated"] += 1 if r.get("cm_truncated") else 0
    c["tp_named"] += r.get("both_named", 0)
    for it in r["only_cm"]:
        c["cm_" + it["class"].replace("-", "_")] += 1
    if ls == 0:
        c["zero_ls"] += 1
    else:
        c["r_sum"] += tp / ls
        c["r_n"] += 1
        c["gr_sum"] += gtp / ls
        c["gr_n"] += 1
    if cm:
        c["p_sum"] += tp / cm
        c["p_n"] += 1
    if gr:
        c["gp_sum"] += gtp / gr
        c["gp_n"] += 1
    if ls and not r["only_ls"] and not r["only_cm"]:
        c["exact"] += 1


def figures(c):
    def div(a, b):
        return round(a / b, 4) if b else None

    return {
        "definitions": c["defs"], "zero_ls_refs": c["zero_ls"], "errors": c["errors"], "ls_refs": c["ls"],
        "codemem_refs": c["cm"], "both": c["tp"], "codemem_out_of_ls_scope": c["out_of_scope"],
        "exact_matches": c["exact"], "codemem_truncated": c["truncated"],
        "precision_micro": div(c["tp"], c["cm"]), "recall_micro": div(c["tp"], c["ls"]),
        "precision_lenient": div(c["tp"], c["cm"] - c["cm_unresolved"]),
        "ls_refs_without_name": c["ls"] - c["ls_named"], "recall_named": div(c["tp_named"], c["ls_named"]),
        "codemem_only": {k: c["cm_" + k] for k in ("unresolved", "other", "text", "definition", "declaration",
                                                  "no_name", "unchecked")},
        "precision_macro": div(c["p_sum"], c["p_n"]), "recall_macro": div(c["r_sum"], c["r_n"]),
        "grep_refs": c["grep"], "grep_precision_micro": div(c["grep_tp"], c["grep"]),
        "grep_recall_micro": div(c["grep_tp"], c["ls"]),
        "grep_precision_lenient": div(c["grep_tp"], c["grep"] - c["grep_unresolved"]),
        "grep_precision_macro": div(c["gp_sum"], c["gp_n"]), "grep_recall_macro": div(c["gr_sum"], c["gr_n"]),
    }


def fmt(x):
    return "   -  " if x is None else f"{x:6.3f}"


def print_table(rows, out=sys.stdout):
    hdr = (f"{'':24} {'defs':>4} {'0-LS':>4} {'LS':>5} {'codemem':>7} {'both':>5}  "
           f"{'P micro':>7} {'P len.':>7} {'R micro':>7} {'R named':>7} {'P macro':>7} {'R macro':>7} | "
           f"{'grep P':>6} {'P len.':>6} {'grep R':>6}")
    print(hdr, file=out)
    print("-" * len(hdr), file=out)
    for label, f in rows:
        print(f"{label[:24]:24} {f['definitions']:4d} {f['zero_ls_refs']:4d} {f['ls_refs']:5d} {f['codemem_refs']:7d} "
              f"{f['both']:5d}  {fmt(f['precision_micro']):>7} {fmt(f['precision_lenient']):>7} "
              f"{fmt(f['recall_micro']):>7} {fmt(f['recall_named']):>7} "
              f"{fmt(f['precision_macro']):>7} {fmt(f['recall_macro']):>7} | "
              f"{fmt(f['grep_precision_micro']):>6} {fmt(f['grep_precision_lenient']):>6} "
              f"{fmt(f['grep_recall_micro']):>6}", file=out)


def verdict(value, target):
    if value is None:
        return "n/a"
    return "meets" if value >= target else "below"


def grep_set(name, words, scope_files, d):
    """Every line of an in-scope file where the name occurs as a word, but the definition's own."""
    out = set()
    for p, lines in words.get(name, {}).items():
        if scope_files is not None and p not in scope_files:
            continue
        for ln in lines:
            if not (p == d["path"] and ln == d["line"]):
                out.add((p, ln))
    return out


def compare(d, cm_data, root, scope_files, words, fc):
    ls_set = {(r["path"], r["line"]) for r in d["ls_refs"]}
    cm_all = set()
    for r in cm_data.get("references") or ():
        if isinstance(r, dict) and r.get("path") and isinstance(r.get("line"), int):
            cm_all.add((norm_path(root, r["path"]), r["line"]))
    cm_out = {k for k in cm_all if scope_files is not None and k[0] not in scope_files}
    cm_set = cm_all - cm_out
    gr = grep_set(d["name"], words, scope_files, d)
    non = {(x["path"], x["line"]): x for x in d.get("non_refs") or ()}
    decls = {(x["path"], x["line"]) for x in d.get("ls_declarations") or ()}
    word = re.compile(r"(?<![\w$])" + re.escape(d["name"]) + r"(?![\w$])")

    def lines(keys, classify=False):
        out = []
        for p, ln in sorted(keys):
            text = fc.line(p, ln)
            it = {"path": p, "line": ln, "text": text.strip()[:200]}
            if classify:
                x = non.get((p, ln))
                if (p, ln) == (d["path"], d["line"]):
                    it["class"] = "definition"
                elif (p, ln) in decls:
                    it["class"] = "declaration"
                else:
                    it["class"] = x["class"] if x else ("unchecked" if word.search(text) else "no-name")
                if x and x.get("hover"):
                    it["hover"] = x["hover"]
            out.append(it)
        return out

    defs = cm_data.get("definitions") or []
    named = {k for k in ls_set if word.search(fc.line(*k))}
    return {
        "ls_named": len(named), "both_named": len(named & cm_set),
        "ls": sorted(ls_set), "cm": sorted(cm_set), "grep": sorted(gr),
        "both": sorted(ls_set & cm_set), "grep_tp": len(ls_set & gr),
        "only_ls": lines(ls_set - cm_set), "only_cm": lines(cm_set - ls_set, classify=True),
        "grep_unresolved": sum(1 for x in non.values() if x["class"] == "unresolved"),
        "cm_out_of_scope": lines(cm_out),
        "cm_definitions": defs, "cm_truncated": bool(cm_data.get("truncated")),
        "cm_resolved_definition": any(isinstance(x, dict) and norm_path(root, x.get("path", "")) == d["path"]
                                      and x.get("line") <= d["line"] <= (x.get("end_line") or x.get("line"))
                                      for x in defs if isinstance(x.get("line"), int)),
    }


# ---------------------------------------------------------------------------------------------
# Corpora and caches


def resolve_corpora(args):
    if args.lang and not args.corpus:
        raise EvalError("--lang needs a --corpus before it")
    pairs = []
    if args.corpus:
        if len(args.lang) != len(args.corpus):
            raise EvalError("give one --lang (python|typescript) per --corpus")
        pairs = list(zip(args.corpus, args.lang))
    else:
        base = args.corpora_dir
        pairs = [(os.path.join(base, n), lang) for n, lang in DEFAULT_CORPORA]
    out = []
    for path, lang in pairs:
        root = os.path.realpath(path)
        name = os.path.basename(root.rstrip("/"))
        stem = re.split(r"[-_.@]", name.lower())[0]
        if stem in FORBIDDEN_CORPORA:
            raise EvalError(f"{name}: {stem} is kept out of the evals on purpose (see eval/README.md); pick another corpus")
        if not os.path.isdir(root):
            raise EvalError(f"corpus {path} does not exist (scripts/eval fetches the default ones into "
                            f"$EVAL_DIR/corpora; pass --corpora-dir or --corpus DIR --lang LANG)")
        out.append({"name": name, "root": root, "lang": lang})
    names = [c["name"] for c in out]
    if len(set(names)) != len(names):
        raise EvalError(f"two corpora share a directory name: {names}")
    return out


def default_corpora_dir():
    cands = []
    if os.environ.get("EVAL_DIR"):
        cands.append(os.path.join(os.environ["EVAL_DIR"], "corpora"))
    cands += ["/tmp/ev/corpora", os.path.join(os.environ.get("TMPDIR", "/tmp"), "codemem-eval", "corpora")]
    for c in cands:
        if os.path.isdir(c):
            return c
    return cands[0]


def cache_path(cache_dir, corpus):
    return os.path.join(cache_dir, f"{corpus['name']}.json")


def load_cache(cache_dir, corpus, seed, n_defs):
    path = cache_path(cache_dir, corpus)
    if not os.path.isfile(path):
        raise EvalError(f"--reuse-ls: no cached language-server answers for {corpus['name']} at {path} "
                        "(run with --ls-only first)")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    want = {"root": corpus["root"], "lang": corpus["lang"], "sampler_version": SAMPLER_VERSION, "seed": seed, "n_defs": n_defs}
    diff = {k: (data.get(k), v) for k, v in want.items() if data.get(k) != v}
    if diff:
        raise EvalError(f"--reuse-ls: the cache {path} was made with other settings "
                        f"({', '.join(f'{k}: {a!r} vs {b!r}' for k, (a, b) in diff.items())}); run --ls-only again")
    return data


# ---------------------------------------------------------------------------------------------


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(
        prog="eval/refs_eval.py",
        description="Precision and recall of `codemem refs` against pyright and typescript-language-server "
                    "on real repositories (chi, express, serde, fastapi and trpc are never used).")
    ap.add_argument("--corpus", action="append", default=[], metavar="DIR",
                    help="a checkout to evaluate (repeatable, each with a --lang); default: flask and requests "
                         "(python) and jotai (typescript) from --corpora-dir")
    ap.add_argument("--lang", action="append", default=[], choices=("python", "typescript"),
                    help="the language of the preceding --corpus (typescript covers JavaScript too)")
    ap.add_argument("--corpora-dir", default=default_corpora_dir(),
                    help="where the default corpora are (default: $EVAL_DIR/corpora, else /tmp/ev/corpora)")
    ap.add_argument("--work-dir", default="/tmp/refs-eval", help="scratch space: codemem homes, logs (default /tmp/refs-eval)")
    ap.add_argument("--node-dir", help="npm prefix the language servers are installed into (default <work-dir>/node)")
    ap.add_argument("--report", help="JSON report (default <work-dir>/report.json); the language-server cache "
                                     "is kept in ls-cache/ beside it")
    ap.add_argument("--defs", type=int, default=40, help="definitions sampled per corpus (default 40)")
    ap.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    ap.add_argument("--ls-only", action="store_true", help="only query the language servers and cache their answers")
    ap.add_argument("--reuse-ls", action="store_true", help="use the cached language-server answers instead of querying")
    ap.add_argument("--ls-timeout", type=float, default=3,
                    help="seconds to keep asking tsserver when it answers nothing for a name that occurs elsewhere (default 3)")
    ap.add_argument("--hover-budget", type=int, default=300,
                    help="hover requests per definition for classifying the name's other occurrences (default 300)")
    ap.add_argument("--bin", default=os.environ.get("CODEMEM_BIN"),
                    help="codemem binary (default $CODEMEM_BIN, else target/release/codemem)")
    ap.add_argument("--embed", action="store_true",
                    help="index with the embedding model's refinement on (default off: CODEMEM_EMBED_REFINE=0; "
                         "references need only the lexical index)")
    ap.add_argument("--show", type=int, default=8, help="definitions with the most misses to print (default 8)")
    args = ap.parse_args(argv)
    if args.ls_only and args.reuse_ls:
        raise EvalError("--ls-only and --reuse-ls exclude each other")

    work_dir = os.path.abspath(args.work_dir)
    node_dir = os.path.abspath(args.node_dir or os.path.join(work_dir, "node"))
    report_path = os.path.abspath(args.report or os.path.join(work_dir, "report.json"))
    cache_dir = os.path.join(os.path.dirname(report_path), "ls-cache")
    os.makedirs(work_dir, exist_ok=True)
    corpora = resolve_corpora(args)

    cm = None
    if not args.ls_only:
        binary = args.bin or os.path.join(os.path.dirname(here), "target", "release", "codemem")
        if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
            raise EvalError(f"codemem binary not found or not executable: {binary!r} (set CODEMEM_BIN or --bin)")
        cm = Codemem(os.path.abspath(binary), args.embed)
        assets = real_home()
        check_assets(assets)

    versions = None
    if not args.reuse_ls:
        versions = install_servers(node_dir)
        log("language servers: " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    started = time.time()
    results, by_corpus, errors = [], [], []
    total = new_counts()
    by_kind = collections.defaultdict(new_counts)
    for corpus in corpora:
        name = corpus["name"]
        if args.reuse_ls:
            data = load_cache(cache_dir, corpus, args.seed, args.defs)
            log(f"{name}: {len(data['definitions'])} definitions with cached {data['server']} answers "
                f"({data.get('versions')})")
        else:
            log(f"{name}: querying the language server ({corpus['lang']}, {corpus['root']})")
            data = ls_side(corpus, node_dir, work_dir, args.defs, args.seed, args.ls_timeout, args.hover_budget)
            data["versions"] = versions
            os.makedirs(cache_dir, exist_ok=True)
            with open(cache_path(cache_dir, corpus), "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
            zero = sum(1 for d in data["definitions"] if not d["ls_refs"])
            log(f"{name}: language server done in {data['timing']['total_s']}s "
                f"({data['timing']} ; {sum(len(d['ls_refs']) for d in data['definitions'])} reference lines, "
                f"{zero} definitions without references)")
        if args.ls_only:
            by_corpus.append({"corpus": name, "lang": corpus["lang"], "timing": data["timing"],
                              "definitions": len(data["definitions"]),
                              "zero_ls_refs": sum(1 for d in data["definitions"] if not d["ls_refs"]),
                              "ls_refs": sum(len(d["ls_refs"]) for d in data["definitions"])})
            continue

        root = corpus["root"]
        fc = FileCache(root)
        files = walk_files(root, lang_exts(corpus["lang"]))
        words = word_index(files, fc)
        projects = {k: set(v) for k, v in (data.get("projects") or {}).items()}
        home = isolated_home(work_dir, name, real_home())
        cm.stop_daemon(home)
        try:
            log(f"{name}: codemem index (CODEMEM_HOME={home})")
            stats = cm.index(root, home)
            log(f"{name}: indexed in {stats['wall_s']}s ({stats.get('files_scanned', '?')} files)")
            counts = new_counts()
            refs_ms = []
            consecutive_failures = 0
            for d in data["definitions"]:
                scope = ts_scope_of(d["path"], projects, files) if corpus["lang"] == "typescript" else None
                r = {"corpus": name, "name": d["name"], "qualname": d["qualname"], "kind": d["kind"], "path": d["path"],
                     "line": d["line"], "occurrences": d["occurrences"]}
                try:
                    cm_data, ms = cm.refs(root, home, d)
                    consecutive_failures = 0
                except EvalError as e:
                    consecutive_failures += 1
                    errors.append(str(e))
                    r["error"] = str(e)
                    log(f"{name}: error: {e}")
                    if consecutive_failures >= 5:
                        raise EvalError(f"{name}: five `codemem refs` calls in a row failed; stopping")
                    results.append(r)
                    add_counts(counts, r)
                    add_counts(total, r)
                    add_counts(by_kind[d["kind"]], r)
                    continue
                refs_ms.append(ms)
                r["refs_ms"] = ms
                r.update(compare(d, cm_data, root, scope, words, fc))
                r["ls_refs"] = d["ls_refs"]
                results.append(r)
                add_counts(counts, r)
                add_counts(total, r)
                add_counts(by_kind[d["kind"]], r)
        finally:
            cm.stop_daemon(home)
        refs_ms.sort()
        by_corpus.append({"corpus": name, "lang": corpus["lang"], "figures": figures(counts), "index": stats,
                          "ls_timing": data["timing"], "ls_versions": data.get("versions"),
                          "refs_ms_median": refs_ms[len(refs_ms) // 2] if refs_ms else None,
                          "refs_ms_max": refs_ms[-1] if refs_ms else None})

    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": round(time.time() - started, 1),
        "mode": "ls-only" if args.ls_only else ("reuse-ls" if args.reuse_ls else "full"),
        "binary": cm.binary if cm else None, "seed": args.seed, "defs_per_corpus": args.defs,
        "versions": versions, "targets": {"recall": RECALL_TARGET, "precision": PRECISION_TARGET},
        "corpora": by_corpus,
    }
    if not args.ls_only:
        report["overall"] = figures(total)
        report["by_kind"] = {k: figures(v) for k, v in sorted(by_kind.items())}
        report["errors"] = errors
        report["definitions"] = results
    os.makedirs(os.path.dirname(report_path), exist_ok=True)
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)

    if args.ls_only:
        for c in by_corpus:
            print(f"{c['corpus']:24} {c['definitions']:3d} definitions, {c['ls_refs']:5d} reference lines, "
                  f"{c['zero_ls_refs']:2d} without references, {c['timing']['total_s']:6.1f}s  {c['timing']}")
        print(f"language-server answers cached in {cache_dir}; report {report_path}")
        return 0

    rows = [(c["corpus"], c["figures"]) for c in by_corpus] + [("overall", report["overall"])]
    print()
    print_table(rows)
    print()
    print("by kind (all corpora):")
    print_table([(k, v) for k, v in report["by_kind"].items()])
    o = report["overall"]
    print()
    print(f"targets: recall >= {RECALL_TARGET} (micro {fmt(o['recall_micro']).strip()}: "
          f"{verdict(o['recall_micro'], RECALL_TARGET)}), precision >= {PRECISION_TARGET} "
          f"(micro {fmt(o['precision_micro']).strip()}: {verdict(o['precision_micro'], PRECISION_TARGET)})")
    print("0-LS: definitions the language server finds no reference for (left out of macro recall; codemem "
          "references for them count against precision). P len.: precision leaving out codemem lines where the "
          "name is an attribute of a receiver the server cannot type (pyright Unknown, tsserver any). R named: "
          "recall over the server's reference lines that contain the name (not those reached through "
          "`import {x as y}` / `export {x as y}` renames). grep: every word occurrence of the name.")
    for c in by_corpus:
        f = c["figures"]
        print(f"  {c['corpus']}: codemem-only lines by what the server says: "
              + ", ".join(f"{k} {v}" for k, v in f["codemem_only"].items())
              + f"; server lines without the name: {f['ls_refs_without_name']}")
    if o["codemem_truncated"]:
        print(f"warning: codemem truncated its answer for {o['codemem_truncated']} definition(s) (see cm_truncated)")
    if any(f["figures"]["codemem_out_of_ls_scope"] for f in by_corpus):
        print("codemem references in files outside the language server's projects were not scored: "
              + ", ".join(f"{c['corpus']} {c['figures']['codemem_out_of_ls_scope']}" for c in by_corpus))
    worst = sorted((r for r in results if not r.get("error")),
                   key=lambda r: -(len(r["only_ls"]) + len(r["only_cm"])))[:args.show]
    worst = [r for r in worst if r["only_ls"] or r["only_cm"]]
    if worst:
        print()
        print("most differences (- found only by the language server, + only by codemem):")
        for r in worst:
            print(f"  {r['corpus']} {r['kind']} {r['qualname']} ({r['path']}:{r['line']}): LS {len(r['ls'])}, "
                  f"codemem {len(r['cm'])}, both {len(r['both'])}")
            for sign, items in (("-", r["only_ls"]), ("+", r["only_cm"])):
                for it in items[:3]:
                    print(f"      {sign} {it['path']}:{it['line']}  {it['text'][:90]}")
                if len(items) > 3:
                    print(f"      {sign} ... {len(items) - 3} more")
    print()
    print(f"report: {report_path}")
    if errors:
        log(f"{len(errors)} codemem command(s) failed; see the report")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except EvalError as e:
        log(f"error: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
