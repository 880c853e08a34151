// The extension's wiring against the real `codemem lsp`: the settings mapping produces the
// initializationOptions, the server is found the way the extension finds it, and the protocol
// surface the commands rely on (codemem/status, $/progress, codemem/search, codemem/similar,
// codemem.remember / showMemories, code lens) answers as the commands expect.
// Server: $CODEMEM_BIN, else <repo>/target/release/codemem. Assets: the installed model.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgress,
  type ProtocolConnection,
  type InitializeResult,
} from "vscode-languageserver-protocol/node";
import { findServer, isExecutable } from "../src/bootstrap";
import type { Hit, SearchResponse } from "../src/commands";
import { serverCommandViews } from "../src/commands";
import { readSettings } from "../src/config";
import { statusView, type ServerStatus } from "../src/status";

const REPO = path.resolve(__dirname, "../../..");
const INDEX_TIMEOUT_MS = 240_000;

function assetHome(): string {
  if (process.env.CODEMEM_HOME) return process.env.CODEMEM_HOME;
  if (process.env.XDG_DATA_HOME) return path.join(process.env.XDG_DATA_HOME, "codemem");
  return path.join(os.homedir(), ".local", "share", "codemem");
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "codemem-vscode-lsp-"));
const root = path.join(tmp, "polyglot");
const uriOf = (p: string) => "file://" + p.split(path.sep).map(encodeURIComponent).join("/");
const relOf = (uri: string) => path.relative(root, decodeURIComponent(new URL(uri).pathname));

let proc: ChildProcess;
let conn: ProtocolConnection;
let init: InitializeResult;
let stderr = "";
const statuses: ServerStatus[] = [];
const progress: { token: string | number; kind: string; percentage?: number }[] = [];
const bars: string[] = [];
let exitCode: number | null | undefined;

function waitFor<T>(what: string, f: () => T | undefined | false, ms = INDEX_TIMEOUT_MS): Promise<T> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      const v = f();
      if (v) return resolve(v);
      if (exitCode !== undefined) return reject(new Error(`server exited (${exitCode}) waiting for ${what}\n${stderr.slice(-3000)}`));
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}; last status ${JSON.stringify(statuses.at(-1))}`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

const ready = () => {
  const s = statuses.at(-1);
  return s && s.state === "ready" && s.roots.length > 0 && s.roots.every((r) => !r.indexing && (r.files ?? 0) > 0) ? s : undefined;
};

beforeAll(async () => {
  fs.cpSync(path.join(REPO, "tests/fixtures/polyglot"), root, { recursive: true });
  const home = path.join(tmp, "home");
  fs.mkdirSync(home);
  const real = assetHome();
  for (const f of ["runtime/libonnxruntime.so.1.32.0", "models/all-minilm-l6-v2-int8/model.onnx"]) {
    if (!fs.existsSync(path.join(real, f))) throw new Error(`${path.join(real, f)} is missing: run scripts/setup, then the tests again`);
  }
  for (const sub of ["runtime", "models"]) fs.symlinkSync(path.join(real, sub), path.join(home, sub));

  // Found exactly as the extension finds it, with codemem.serverPath set to the binary under test.
  const serverPath = process.env.CODEMEM_BIN ?? path.join(REPO, "target/release/codemem");
  const found = findServer(serverPath, { env: process.env, platform: process.platform, workspaceFolders: [root], isExecutable });
  if (found.path === undefined) throw new Error(`${found.error} Build it: cargo build --release -p codemem-cli`);

  const env: NodeJS.ProcessEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CODEMEM_"))) };
  env.CODEMEM_HOME = home;
  // `codemem lsp` attaches to a per-home daemon; this test's daemon goes soon after the session.
  env.CODEMEM_DAEMON_IDLE_SECS = "2";
  env.NO_COLOR = "1";
  proc = spawn(found.path, ["lsp"], { cwd: root, env, stdio: ["pipe", "pipe", "pipe"] });
  proc.stderr!.on("data", (d) => (stderr += d));
  proc.on("exit", (code) => (exitCode = code));
  conn = createProtocolConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  conn.onNotification("codemem/status", (s: ServerStatus) => {
    statuses.push(s);
    bars.push(statusView(s, undefined).text);
  });
  conn.onRequest("window/workDoneProgress/create", ({ token }: { token: string | number }) => {
    conn.onProgress(WorkDoneProgress.type, token, (v) => {
      progress.push({ token, kind: v.kind, percentage: "percentage" in v ? v.percentage : undefined });
      if (v.kind !== "end") bars.push(statusView(statuses.at(-1), { title: "t", percentage: "percentage" in v ? v.percentage : undefined }).text);
    });
    return null;
  });
  conn.onRequest("workspace/codeLens/refresh", () => null);
  conn.onNotification("window/showMessage", () => undefined);
  conn.onNotification("window/logMessage", () => undefined);
  conn.listen();

  // The settings a user would have, with MCP off so parallel test runs do not race for a port.
  const settings = readSettings((key) => ({ "mcp.enabled": false } as Record<string, unknown>)[key] as never);
  init = await conn.sendRequest("initialize", {
    processId: process.pid,
    rootUri: uriOf(root),
    workspaceFolders: [{ uri: uriOf(root), name: "polyglot" }],
    initializationOptions: settings.initializationOptions,
    capabilities: {
      window: { workDoneProgress: true },
      workspace: { workspaceFolders: true, configuration: true, codeLens: { refreshSupport: true } },
      textDocument: { codeLens: {}, hover: {} },
    },
  });
  await conn.sendNotification("initialized", {});
  await waitFor("codemem/status ready", ready);
}, INDEX_TIMEOUT_MS + 30_000);

afterAll(async () => {
  try {
    if (exitCode === undefined) {
      await conn.sendRequest("shutdown");
      await conn.sendNotification("exit");
      await waitFor("exit", () => exitCode !== undefined, 15_000).catch(() => proc.kill("SIGKILL"));
    }
  } finally {
    conn?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 30_000);

describe("codemem lsp driven the way the extension drives it", () => {
  it("advertises exactly the server commands the extension knows (views for the ones with answers)", () => {
    const commands = init.capabilities.executeCommandProvider?.commands ?? [];
    expect([...commands].sort()).toEqual(["codemem.findSimilar", "codemem.reindex", "codemem.remember", "codemem.showMemories", "codemem.status"]);
    for (const c of Object.keys(serverCommandViews({} as never))) expect(commands).toContain(c);
  });

  it("indexing shows progress in the status bar, then the file count", async () => {
    await waitFor("$/progress end", () => progress.some((p) => p.kind === "end"), 30_000);
    const kinds = progress.map((p) => p.kind);
    expect(kinds[0]).toBe("begin");
    expect(kinds.at(-1)).toBe("end");
    const pcts = progress.map((p) => p.percentage).filter((p): p is number => p !== undefined);
    expect(pcts).toEqual([...pcts].sort((a, b) => a - b));
    expect(bars.some((b) => /^\$\(sync~spin\) codemem \d+%$/.test(b))).toBe(true);
    const files = ready()!.roots[0].files!;
    expect(statusView(ready(), undefined).text).toBe(`$(database) codemem ${files} files`);
    expect(ready()!.mcp ?? null).toBeNull(); // MCP off as asked
  });

  it("Search Codebase's request finds the definition's file first", async () => {
    const r = await conn.sendRequest<SearchResponse>("codemem/search", { query: "calculate_invoice_total", k: 5 });
    expect(r.hits.length).toBeGreaterThan(0);
    expect(r.hits.length).toBeLessThanOrEqual(5);
    expect(relOf(r.hits[0].uri)).toBe("billing/invoice.py");
    expect(fs.existsSync(decodeURIComponent(new URL(r.hits[0].uri).pathname))).toBe(true);
    const h: Hit = r.hits[0];
    expect(h.range.start.line).toBeGreaterThanOrEqual(0);
    expect(typeof h.path).toBe("string");
  });

  it("a natural-language query finds the rate limiter", async () => {
    const r = await conn.sendRequest<SearchResponse>("codemem/search", { query: "token bucket rate limiting", k: 5 });
    expect(r.hits.slice(0, 3).map((h) => relOf(h.uri))).toContain("src/ratelimit.rs");
  });

  it("Find Similar Code's request (a range) answers with hits", async () => {
    const first = (await conn.sendRequest<SearchResponse>("codemem/search", { query: "calculate_invoice_total", k: 1 })).hits[0];
    const r = await conn.sendRequest<SearchResponse>("codemem/similar", { textDocument: { uri: first.uri }, range: first.range, k: 5 });
    expect(r.hits.length).toBeGreaterThan(0);
    expect(r.hits.every((h) => typeof h.uri === "string" && h.range)).toBe(true);
  });

  it("Remember Selection… pins a note the code lens and codemem.showMemories show", async () => {
    const first = (await conn.sendRequest<SearchResponse>("codemem/search", { query: "calculate_invoice_total", k: 1 })).hits[0];
    const note = "totals are rounded half-even; finance depends on it";
    const saved = await conn.sendRequest<{ id: string }>("workspace/executeCommand", {
      command: "codemem.remember",
      arguments: [{ uri: first.uri, range: first.range, note }],
    });
    expect(saved.id).toBeTruthy();
    const lenses = await conn.sendRequest<{ command?: { command: string; arguments: unknown[] } }[] | null>("textDocument/codeLens", {
      textDocument: { uri: first.uri },
    });
    const lens = (lenses ?? []).find((l) => l.command?.command === "codemem.showMemories");
    expect(lens, JSON.stringify(lenses)).toBeTruthy();
    const shown = await conn.sendRequest<{ memories: { text: string }[] }>("workspace/executeCommand", {
      command: "codemem.showMemories",
      arguments: lens!.command!.arguments,
    });
    expect(shown.memories.map((m) => m.text)).toContain(note);
  });

  it("Show Status's command answers with what the status bar and quick pick read", async () => {
    const s = await conn.sendRequest<ServerStatus>("workspace/executeCommand", { command: "codemem.status", arguments: [] });
    expect(s.state).toBe("ready");
    expect(s.roots[0].root).toBe(root);
    expect(s.backends.every((b) => b.healthy)).toBe(true);
  });
});
