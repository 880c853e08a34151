import { beforeEach, describe, expect, it } from "vitest";
import {
  commandHandlers,
  configureMcp,
  findCallers,
  findSimilar,
  reindexWorkspace,
  rememberSelection,
  searchCodebase,
  serverCommandViews,
  showStatus,
} from "../src/commands";
import { FakeQuickPick } from "./fake-vscode";
import { fakeServer, hit, openEditor, setWorkspace, ui } from "./helpers";

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

beforeEach(() => ui.reset());

describe("Search Codebase", () => {
  it("searches as you type, keeps only the latest answer, opens the picked location", async () => {
    const server = fakeServer({
      "codemem/search": (p: { query: string }) => ({ hits: p.query === "invoice total" ? [hit("billing/invoice.py", 9, "calculate_invoice_total")] : [hit("other.py", 1)] }),
    });
    const done = searchCodebase(server, 5);
    const qp = ui.quickPicks[0] as FakeQuickPick<any>;
    qp.type("inv");
    qp.type("invoice total"); // within the debounce: only this one is sent
    await tick(30);
    const searches = server.calls.filter((c) => c.name === "codemem/search");
    expect(searches.map((c) => c.params)).toEqual([{ query: "invoice total", k: 7 }]);
    expect(qp.items).toHaveLength(1);
    expect(qp.items[0].label).toContain("calculate_invoice_total");
    expect(qp.items[0].description).toBe("billing/invoice.py:11"); // the def line, not the chunk start
    expect(qp.items[0].detail).toBe("def calculate_invoice_total():");
    expect(qp.items[0].alwaysShow).toBe(true);
    qp.pick(0);
    await done;
    expect(ui.opened).toEqual([{ uri: "file:///ws/billing/invoice.py", selection: expect.objectContaining({ start: { line: 10, character: 0 } }) }]);
  });

  it("an answer that arrives after a newer query is dropped", async () => {
    let release!: (v: unknown) => void;
    const server = fakeServer({
      "codemem/search": (p: { query: string }) =>
        p.query === "slow" ? new Promise((r) => (release = r)) : { hits: [hit("fast.py", 0, "fast")] },
    });
    void searchCodebase(server, 1);
    const qp = ui.quickPicks[0] as FakeQuickPick<any>;
    qp.type("slow");
    await tick(10);
    qp.type("fast");
    await tick(10);
    release({ hits: [hit("slow.py", 0, "slow")] });
    await tick(5);
    expect(qp.items.map((i: any) => i.hit.path)).toEqual(["fast.py"]);
    qp.hide();
  });

  it("starts with a one-line selection as the query", async () => {
    openEditor("/ws/a.py", ["x = TokenBucket()"], [0, 4, 0, 15]);
    const server = fakeServer({ "codemem/search": { hits: [] } });
    void searchCodebase(server, 1);
    await tick(5);
    expect(server.calls[0].params).toEqual({ query: "TokenBucket", k: 7 });
    (ui.quickPicks[0] as FakeQuickPick<any>).hide();
  });

  it("a failing search shows an error instead of throwing", async () => {
    const server = fakeServer({});
    void searchCodebase(server, 1);
    const qp = ui.quickPicks[0] as FakeQuickPick<any>;
    qp.type("x");
    await tick(10);
    expect(ui.messages).toEqual([{ level: "error", text: expect.stringContaining("search failed") }]);
    expect(qp.busy).toBe(false);
    qp.hide();
  });
});

describe("symbolLine", () => {
  it("finds the symbol's own line inside a merged chunk, else the chunk start", async () => {
    const { symbolLine } = await import("../src/commands");
    const merged = { ...hit("b.py", 45, "calculate_invoice_total"), snippet: "def _round_cents(a):\n    return a\n\ndef calculate_invoice_total(items):\n" };
    expect(symbolLine(merged)).toBe(48);
    expect(symbolLine({ ...merged, symbol: "billing.invoice.calculate_invoice_total" })).toBe(48);
    expect(symbolLine({ ...merged, symbol: "calculate" })).toBe(45); // whole words only
    expect(symbolLine({ ...merged, symbol: null })).toBe(45);
    expect(symbolLine({ ...merged, snippet: undefined })).toBe(45);
  });
});

describe("Find Callers", () => {
  it("asks for the callers at the cursor and opens the chosen call site", async () => {
    openEditor("/ws/a.py", ["def total(x):", "    return x"], [0, 5, 0, 5]);
    ui.pickAnswer = 1;
    const server = fakeServer({
      "codemem/references": {
        name: "total",
        references: [
          { path: "b.py", line: 3, caller: "checkout" },
          { path: "c.py", line: 9, caller: null },
        ],
        locations: [
          { uri: "file:///ws/b.py", range: { start: { line: 2, character: 4 }, end: { line: 2, character: 9 } } },
          { uri: "file:///ws/c.py", range: { start: { line: 8, character: 0 }, end: { line: 8, character: 5 } } },
        ],
      },
    });
    await findCallers(server);
    expect(server.calls[0]).toEqual({
      kind: "request",
      name: "codemem/references",
      params: { textDocument: { uri: "file:///ws/a.py" }, position: { line: 0, character: 5 }, mode: "callers" },
    });
    expect(ui.shownPicks[0].items.map((i) => i.label)).toEqual(["checkout", "(top level)"]);
    expect(ui.opened[0].uri).toBe("file:///ws/c.py");
  });

  it("no calls: says so", async () => {
    openEditor("/ws/a.py", ["def total(x):"], [0, 5, 0, 5]);
    const server = fakeServer({ "codemem/references": { name: "total", references: [], locations: [] } });
    await findCallers(server);
    expect(ui.messages).toEqual([{ level: "info", text: "codemem: no calls of total found." }]);
  });
});

describe("Find Similar Code", () => {
  it("sends the selection as a range and opens the chosen hit", async () => {
    openEditor("/ws/a.py", ["def a():", "    return 1", ""], [0, 0, 2, 0]);
    ui.pickAnswer = 0;
    const server = fakeServer({ "codemem/similar": { hits: [hit("b.py", 4, "b")] } });
    await findSimilar(server);
    expect(server.calls[0]).toEqual({
      kind: "request",
      name: "codemem/similar",
      params: { textDocument: { uri: "file:///ws/a.py" }, range: { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } }, k: 7 },
    });
    expect(ui.opened[0].uri).toBe("file:///ws/b.py");
  });

  it("without a selection sends the cursor position (the symbol there)", async () => {
    openEditor("/ws/a.py", ["def a():"], [0, 5, 0, 5]);
    const server = fakeServer({ "codemem/similar": { hits: [] } });
    await findSimilar(server);
    expect(server.calls[0].params).toEqual({ textDocument: { uri: "file:///ws/a.py" }, position: { line: 0, character: 5 }, k: 7 });
    expect(ui.messages).toEqual([{ level: "info", text: "codemem: no similar code found." }]);
  });

  it("the selection itself is not offered as similar to itself", async () => {
    openEditor("/ws/a.py", ["def a():", "  pass"], [0, 0, 1, 6]);
    ui.pickAnswer = 0;
    const self = { ...hit("a.py", 0, "a"), uri: "file:///ws/a.py" };
    const server = fakeServer({ "codemem/similar": { hits: [self, hit("c.py", 3, "c")] } });
    await findSimilar(server);
    expect(ui.shownPicks[0].items.map((i) => i.hit.path)).toEqual(["c.py"]);
  });

  it("no editor: a warning, no request", async () => {
    const server = fakeServer({});
    await findSimilar(server);
    expect(server.calls).toEqual([]);
    expect(ui.messages[0].level).toBe("warning");
  });
});

describe("Remember Selection…", () => {
  it("pins the note to the selection through codemem.remember", async () => {
    openEditor("/ws/a.py", ["def a():", "    return 1"], [0, 0, 1, 12]);
    ui.inputAnswer = "  keep this in sync with b.py  ";
    const server = fakeServer({ "codemem.remember": { id: "m1" } });
    await rememberSelection(server);
    expect(server.calls).toEqual([
      {
        kind: "command",
        name: "codemem.remember",
        params: [{ uri: "file:///ws/a.py", range: { start: { line: 0, character: 0 }, end: { line: 1, character: 12 } }, note: "keep this in sync with b.py" }],
      },
    ]);
    expect(ui.messages).toEqual([{ level: "info", text: "codemem: note saved." }]);
    expect(ui.inputOptions.validateInput("  ")).toBeTruthy();
    expect(ui.inputOptions.validateInput("ok")).toBeUndefined();
  });

  it("an empty selection pins the note to the current line", async () => {
    openEditor("/ws/a.py", ["x", "long line here"], [1, 3, 1, 3]);
    ui.inputAnswer = "n";
    const server = fakeServer({ "codemem.remember": {} });
    await rememberSelection(server);
    expect((server.calls[0].params as any)[0].range).toEqual({ start: { line: 1, character: 0 }, end: { line: 1, character: 14 } });
  });

  it("Esc in the input box sends nothing", async () => {
    openEditor("/ws/a.py", ["x"], [0, 0, 0, 1]);
    const server = fakeServer({});
    await rememberSelection(server);
    expect(server.calls).toEqual([]);
  });
});

describe("Reindex, Status, Restart", () => {
  it("reindex reports the counts", async () => {
    const server = fakeServer({ "codemem.reindex": { roots: [{ files_indexed: 3, files_unchanged: 40, cancelled: false }] } });
    await reindexWorkspace(server);
    expect(server.calls.map((c) => c.name)).toEqual(["codemem.reindex"]);
    expect(ui.messages).toEqual([{ level: "info", text: "codemem: reindexed: 3 files indexed, 40 unchanged." }]);
  });

  it("status lists roots, backends and MCP; picking MCP copies the URL", async () => {
    const server = fakeServer({
      "codemem.status": {
        state: "ready",
        model: "m",
        roots: [{ root: "/ws", files: 5, points: 9, memories: 1, indexing: false }],
        backends: [{ name: "kv", kind: "embedded", healthy: true, detail: "redb" }],
        mcp: { url: "http://127.0.0.1:9200/mcp" },
      },
    });
    ui.pickAnswer = (items) => items.find((i: any) => i.label.includes("MCP"));
    await showStatus(server);
    const labels = ui.shownPicks[0].items.map((i: any) => i.label);
    expect(labels).toEqual(["$(database) ready", "$(folder) /ws", "$(pass) kv (embedded)", "$(plug) MCP http://127.0.0.1:9200/mcp"]);
    expect(ui.clipboard).toBe("http://127.0.0.1:9200/mcp");
  });

  it("status while indexing offers Cancel indexing", async () => {
    const server = fakeServer({ "codemem.status": { state: "indexing", roots: [{ root: "/ws", indexing: true }], backends: [] } });
    ui.pickAnswer = (items) => items.find((i: any) => i.label.includes("Cancel"));
    await showStatus(server);
    expect(server.cancelled).toBe(1);
  });

  it("restart restarts", async () => {
    const server = fakeServer({});
    await commandHandlers(server)["codemem.restartServer"]();
    expect(server.restarted).toBe(1);
  });
});

describe("Configure MCP", () => {
  const status = { state: "ready", roots: [], backends: [], mcp: { url: "http://127.0.0.1:9311/mcp" } };

  it("in Cursor writes .cursor/mcp.json with the live URL and the token, keeping other servers", async () => {
    setWorkspace("/ws");
    ui.files.set("/ws/.cursor/mcp.json", JSON.stringify({ mcpServers: { other: { command: "o" } } }));
    (await import("./fake-vscode")).env.appName = "Cursor";
    ui.pickAnswer = 0;
    await configureMcp(fakeServer({}, status as any));
    expect(ui.shownPicks[0].items[0].label).toBe("Write .cursor/mcp.json");
    expect(JSON.parse(ui.files.get("/ws/.cursor/mcp.json")!)).toEqual({
      mcpServers: { other: { command: "o" }, codemem: { url: "http://127.0.0.1:9311/mcp", headers: { Authorization: "Bearer tok-123" } } },
    });
    expect(ui.opened[0].uri).toBe("file:///ws/.cursor/mcp.json");
  });

  it("in VS Code writes .vscode/mcp.json; asks the server when no status arrived yet", async () => {
    setWorkspace("/ws");
    ui.pickAnswer = 0;
    const server = fakeServer({ "codemem.status": status });
    await configureMcp(server);
    expect(JSON.parse(ui.files.get("/ws/.vscode/mcp.json")!).servers.codemem.url).toBe("http://127.0.0.1:9311/mcp");
  });

  it("show without writing: an untitled JSON document, no file written", async () => {
    setWorkspace("/ws");
    ui.pickAnswer = (items) => items.at(-1);
    await configureMcp(fakeServer({}, status as any));
    expect(ui.files.size).toBe(0);
    expect(JSON.parse(ui.untitled[0].content!).servers.codemem.headers.Authorization).toBe("Bearer tok-123");
  });

  it("MCP off: says how to turn it on", async () => {
    await configureMcp(fakeServer({ "codemem.status": { state: "ready", roots: [], backends: [], mcp: null } }));
    expect(ui.messages[0].text).toContain("codemem.mcp.enabled");
  });
});

describe("server command views", () => {
  it("code lens → codemem.showMemories runs the server command and lists the notes", async () => {
    const views = serverCommandViews(fakeServer({}));
    ui.pickAnswer = 0;
    let ran = 0;
    await views["codemem.showMemories"]([{ uri: "file:///ws/a.py", line: 3 }], async () => {
      ran++;
      return { memories: [{ id: "1", text: "retry budget is shared", namespace: "shared", tags: ["perf"] }] };
    });
    expect(ran).toBe(1);
    expect(ui.shownPicks[0].items).toEqual([{ label: "retry budget is shared", description: "shared #perf", detail: "" }]);
  });

  it("code action → codemem.findSimilar shows the similar code", async () => {
    ui.pickAnswer = 0;
    const server = fakeServer({ "codemem/similar": { hits: [hit("z.py", 2, "z")] } });
    const range = { start: { line: 1, character: 0 }, end: { line: 2, character: 0 } };
    await serverCommandViews(server)["codemem.findSimilar"]([{ uri: "file:///ws/a.py", range }], async () => undefined);
    expect(server.calls[0].params).toEqual({ textDocument: { uri: "file:///ws/a.py" }, range, k: 7 });
    expect(ui.opened[0].uri).toBe("file:///ws/z.py");
  });
});
