// The commands of the palette, and the views for server commands whose answer the user must
// see (code lens "N notes" → codemem.showMemories, code action → codemem.findSimilar).
// Everything talks to the server through `Server`, so tests drive these with a fake.

import * as vscode from "vscode";
import { MCP_FILES, mcpConfig, targetFor, type McpTarget } from "./mcp";
import type { ServerStatus } from "./status";

export interface LspRange {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

export interface Hit {
  uri: string;
  range: LspRange;
  path: string;
  symbol?: string | null;
  kind?: string;
  score?: number;
  snippet?: string;
  namespace?: string;
  unsaved?: boolean;
}

export interface SearchResponse {
  hits: Hit[];
  mode?: string;
  denseAvailable?: boolean;
}

export interface Memory {
  id: string;
  text: string;
  namespace?: string;
  tags?: string[];
  path?: string | null;
  symbol?: string | null;
  author?: string | null;
}

/** What the commands need from the running language server. */
export interface Server {
  request<R>(method: string, params: unknown, token?: vscode.CancellationToken): Promise<R>;
  executeCommand<R>(command: string, args: unknown[]): Promise<R>;
  status(): ServerStatus | undefined;
  /** Cancels the running index runs; false when none is running. */
  cancelIndexing(): boolean;
  /** `codemem token`: the bearer token of the MCP endpoint. */
  token(): Promise<string>;
  k(): number;
  restart(): Promise<void>;
}

/** How long Search Codebase waits after the last keystroke before asking the server. */
export const SEARCH_DEBOUNCE_MS = 120;

type HitItem = vscode.QuickPickItem & { hit: Hit };

/**
 * The line of the hit's symbol: a hit's range is its whole chunk, which may begin with small
 * neighbours merged into it; the snippet starts at the range's first line.
 */
export function symbolLine(h: Hit): number {
  const leaf = h.symbol?.split(/::|\.|#/).pop();
  if (leaf) {
    const re = new RegExp(`(^|[^\\w$])${leaf.replace(/[$]/g, "\\$")}($|[^\\w$])`);
    const i = (h.snippet ?? "").split("\n").findIndex((l) => re.test(l));
    if (i >= 0 && h.range.start.line + i <= h.range.end.line) return h.range.start.line + i;
  }
  return h.range.start.line;
}

function hitItem(h: Hit): HitItem {
  const at = symbolLine(h);
  const line = at + 1;
  const lines = (h.snippet ?? "").split("\n");
  const first = lines[at - h.range.start.line]?.trim() ? lines[at - h.range.start.line] : (lines.find((l) => l.trim()) ?? "");
  return {
    label: h.symbol ? `$(symbol-${h.kind === "class" ? "class" : "function"}) ${h.symbol}` : `$(file) ${h.path}`,
    description: `${h.path}:${line}${h.unsaved ? " (unsaved)" : ""}`,
    detail: first.trim(),
    alwaysShow: true, // the server already ranked them; the quick pick's own filter must not hide them
    hit: h,
  };
}

export async function openHit(h: Hit): Promise<void> {
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(h.uri));
  const line = symbolLine(h);
  const pos = new vscode.Position(line, line === h.range.start.line ? h.range.start.character : 0);
  await vscode.window.showTextDocument(doc, { selection: new vscode.Range(pos, pos), preview: true });
}

async function pickHit(title: string, hits: Hit[]): Promise<void> {
  const picked = await vscode.window.showQuickPick(hits.map(hitItem), { title, matchOnDescription: true });
  if (picked) await openHit(picked.hit);
}

function activeEditor(what: string): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor) void vscode.window.showWarningMessage(`codemem: open a file to ${what}.`);
  return editor;
}

function lspRange(r: vscode.Range): LspRange {
  return {
    start: { line: r.start.line, character: r.start.character },
    end: { line: r.end.line, character: r.end.character },
  };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Live search: every pause in typing sends codemem/search; stale answers are dropped. */
export function searchCodebase(server: Server, debounceMs = SEARCH_DEBOUNCE_MS): Promise<void> {
  const qp = vscode.window.createQuickPick<HitItem>();
  qp.title = "Codemem: Search Codebase";
  qp.placeholder = "A question (\"where are retries configured\") or an identifier";
  qp.matchOnDescription = true;
  let seq = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let cts: vscode.CancellationTokenSource | undefined;
  const run = async (query: string) => {
    const mine = ++seq;
    cts?.cancel();
    cts = new vscode.CancellationTokenSource();
    if (!query.trim()) {
      qp.items = [];
      qp.busy = false;
      return;
    }
    qp.busy = true;
    try {
      const r = await server.request<SearchResponse>("codemem/search", { query, k: server.k() }, cts.token);
      if (mine !== seq) return;
      qp.items = r.hits.map(hitItem);
      qp.placeholder = r.hits.length ? qp.placeholder : `No results for "${query}"`;
    } catch (e) {
      if (mine !== seq) return;
      qp.items = [];
      void vscode.window.showErrorMessage(`codemem: search failed: ${errorText(e)}`);
    } finally {
      if (mine === seq) qp.busy = false;
    }
  };
  return new Promise<void>((resolve) => {
    qp.onDidChangeValue((value) => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void run(value), debounceMs);
    });
    qp.onDidAccept(() => {
      const item = qp.selectedItems[0] ?? qp.activeItems[0];
      qp.hide();
      if (item) void openHit(item.hit).then(resolve, resolve);
      else resolve();
    });
    qp.onDidHide(() => {
      if (timer) clearTimeout(timer);
      cts?.cancel();
      qp.dispose();
      resolve();
    });
    const editor = vscode.window.activeTextEditor;
    const selected = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : "";
    qp.show();
    if (selected && !selected.includes("\n")) {
      qp.value = selected;
      void run(selected);
    }
  });
}

export async function showSimilar(server: Server, uri: string, at: { range?: LspRange; position?: LspRange["start"] }): Promise<void> {
  const r = await server.request<SearchResponse>("codemem/similar", { textDocument: { uri }, ...at, k: server.k() });
  const hits = r.hits.filter((h) => !(h.uri === uri && at.range && overlaps(h.range, at.range)));
  if (!hits.length) {
    void vscode.window.showInformationMessage("codemem: no similar code found.");
    return;
  }
  await pickHit("Codemem: Similar Code", hits);
}

function overlaps(a: LspRange, b: LspRange): boolean {
  return a.start.line <= b.end.line && b.start.line <= a.end.line;
}

export async function findSimilar(server: Server): Promise<void> {
  const editor = activeEditor("find code similar to it");
  if (!editor) return;
  const uri = editor.document.uri.toString();
  const at = editor.selection.isEmpty
    ? { position: { line: editor.selection.active.line, character: editor.selection.active.character } }
    : { range: lspRange(editor.selection) };
  try {
    await showSimilar(server, uri, at);
  } catch (e) {
    void vscode.window.showErrorMessage(`codemem: find similar failed: ${errorText(e)}`);
  }
}

/** One call site from `codemem/references` (mode `callers`). */
interface CallSite {
  path: string;
  line: number;
  caller?: string | null;
  unsaved?: boolean;
}

/** Who calls the function or method under the cursor (syntax trees, no language server). */
export async function findCallers(server: Server): Promise<void> {
  const editor = activeEditor("find the callers of the name under the cursor");
  if (!editor) return;
  const uri = editor.document.uri.toString();
  const { line, character } = editor.selection.active;
  try {
    const r = await server.request<{ name: string; references: CallSite[]; locations: { uri: string; range: LspRange }[] }>(
      "codemem/references",
      { textDocument: { uri }, position: { line, character }, mode: "callers" },
    );
    if (!r.references.length) {
      void vscode.window.showInformationMessage(`codemem: no calls of ${r.name} found.`);
      return;
    }
    const items = r.references.map((s, i) => ({
      label: s.caller ?? "(top level)",
      description: `${s.path}:${s.line}${s.unsaved ? " (unsaved)" : ""}`,
      alwaysShow: true,
      loc: r.locations[i],
    }));
    const picked = await vscode.window.showQuickPick(items, { title: `Codemem: Callers of ${r.name}`, matchOnDescription: true });
    if (picked?.loc) {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(picked.loc.uri));
      const pos = new vscode.Position(picked.loc.range.start.line, picked.loc.range.start.character);
      await vscode.window.showTextDocument(doc, { selection: new vscode.Range(pos, pos), preview: true });
    }
  } catch (e) {
    void vscode.window.showErrorMessage(`codemem: find callers failed: ${errorText(e)}`);
  }
}

export async function rememberSelection(server: Server): Promise<void> {
  const editor = activeEditor("pin a note to it");
  if (!editor) return;
  const sel = editor.selection;
  const range = sel.isEmpty ? editor.document.lineAt(sel.active.line).range : sel;
  const note = await vscode.window.showInputBox({
    title: "Codemem: Remember Selection",
    prompt: "A note pinned to this code (shown on hover and in a code lens; agents recall it over MCP)",
    validateInput: (v) => (v.trim() ? undefined : "Write a note"),
  });
  if (!note?.trim()) return;
  try {
    await server.executeCommand("codemem.remember", [
      { uri: editor.document.uri.toString(), range: lspRange(range), note: note.trim() },
    ]);
    void vscode.window.showInformationMessage("codemem: note saved.");
  } catch (e) {
    void vscode.window.showErrorMessage(`codemem: could not save the note: ${errorText(e)}`);
  }
}

interface ReindexAnswer {
  roots: { files_indexed?: number; files_unchanged?: number; cancelled?: boolean }[];
}

export async function reindexWorkspace(server: Server): Promise<void> {
  try {
    const r = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: "codemem: reindexing" },
      () => server.executeCommand<ReindexAnswer>("codemem.reindex", []),
    );
    const roots = r?.roots ?? [];
    const indexed = roots.reduce((n, s) => n + (s.files_indexed ?? 0), 0);
    const unchanged = roots.reduce((n, s) => n + (s.files_unchanged ?? 0), 0);
    const cancelled = roots.some((s) => s.cancelled);
    void vscode.window.showInformationMessage(
      `codemem: ${cancelled ? "reindex cancelled" : "reindexed"}: ${indexed} files indexed, ${unchanged} unchanged.`,
    );
  } catch (e) {
    void vscode.window.showErrorMessage(`codemem: reindex failed: ${errorText(e)}`);
  }
}

export async function showStatus(server: Server): Promise<void> {
  let s: ServerStatus;
  try {
    s = await server.executeCommand<ServerStatus>("codemem.status", []);
  } catch (e) {
    void vscode.window.showErrorMessage(`codemem: no status: ${errorText(e)}`);
    return;
  }
  type Item = vscode.QuickPickItem & { action?: () => void | Thenable<unknown> };
  const items: Item[] = [{ label: `$(database) ${s.state}`, description: s.model ?? "lexical only" }];
  for (const r of s.roots ?? []) {
    items.push({
      label: `$(folder) ${r.root}`,
      description: `${r.files ?? 0} files, ${r.points ?? 0} chunks, ${r.memories ?? 0} notes${r.indexing ? ", indexing" : ""}`,
      detail: r.lastError ? `last error: ${r.lastError}` : undefined,
    });
  }
  for (const b of s.backends ?? []) {
    items.push({
      label: `${b.healthy ? "$(pass)" : "$(error)"} ${b.name} (${b.kind})`,
      description: b.breaker ? `breaker ${b.breaker}` : undefined,
      detail: b.detail,
    });
  }
  if (s.mcp?.url) {
    const url = s.mcp.url;
    items.push({ label: `$(plug) MCP ${url}`, description: "copy URL", action: () => vscode.env.clipboard.writeText(url) });
  }
  if ((s.roots ?? []).some((r) => r.indexing)) {
    items.push({ label: "$(stop) Cancel indexing", action: () => void server.cancelIndexing() });
  }
  const picked = await vscode.window.showQuickPick(items, { title: "Codemem: Status" });
  await picked?.action?.();
}

export async function configureMcp(server: Server): Promise<void> {
  let url = server.status()?.mcp?.url;
  try {
    url ??= (await server.executeCommand<ServerStatus>("codemem.status", [])).mcp?.url;
  } catch {
    // fall through to the message below
  }
  if (!url) {
    void vscode.window.showErrorMessage(
      "codemem: the MCP endpoint is not running. Turn on codemem.mcp.enabled (or pick a free codemem.mcp.port) and restart the server.",
    );
    return;
  }
  let token: string;
  try {
    token = await server.token();
  } catch (e) {
    void vscode.window.showErrorMessage(`codemem: \`codemem token\` failed: ${errorText(e)}`);
    return;
  }
  const preferred = targetFor(vscode.env.appName);
  const other: McpTarget = preferred === "cursor" ? "vscode" : "cursor";
  const folder = vscode.workspace.workspaceFolders?.[0];
  type Item = vscode.QuickPickItem & { target?: McpTarget };
  const items: Item[] = folder
    ? [
        { label: `Write ${MCP_FILES[preferred]}`, description: "for this editor's agent", target: preferred },
        { label: `Write ${MCP_FILES[other]}`, target: other },
      ]
    : [];
  items.push({ label: "Show the configuration without writing it" });
  const picked = await vscode.window.showQuickPick(items, { title: "Codemem: Configure MCP", placeHolder: `MCP endpoint: ${url}` });
  if (!picked) return;
  if (!picked.target || !folder) {
    const doc = await vscode.workspace.openTextDocument({ language: "json", content: mcpConfig(preferred, url, token) });
    await vscode.window.showTextDocument(doc);
    return;
  }
  const file = vscode.Uri.joinPath(folder.uri, MCP_FILES[picked.target]);
  let existing: string | undefined;
  try {
    existing = new TextDecoder().decode(await vscode.workspace.fs.readFile(file));
  } catch {
    existing = undefined; // no file yet
  }
  let text: string;
  try {
    text = mcpConfig(picked.target, url, token, existing);
  } catch (e) {
    void vscode.window.showErrorMessage(`codemem: ${MCP_FILES[picked.target]} is not valid JSON (${errorText(e)}); fix or delete it first.`);
    return;
  }
  await vscode.workspace.fs.writeFile(file, new TextEncoder().encode(text));
  await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(file));
  void vscode.window.showInformationMessage(
    `codemem: wrote ${MCP_FILES[picked.target]}. It holds your MCP token: keep it out of version control.`,
  );
}

/** Palette commands: the keys must match package.json `contributes.commands` (a test checks). */
export function commandHandlers(server: Server): Record<string, (...args: unknown[]) => Promise<void>> {
  return {
    "codemem.search": () => searchCodebase(server),
    "codemem.similar": () => findSimilar(server),
    "codemem.findCallers": () => findCallers(server),
    "codemem.rememberSelection": () => rememberSelection(server),
    "codemem.reindexWorkspace": () => reindexWorkspace(server),
    "codemem.showStatus": () => showStatus(server),
    "codemem.configureMcp": () => configureMcp(server),
    "codemem.restartServer": () => server.restart(),
  };
}

/**
 * Server commands (registered by the language client from the server's executeCommandProvider)
 * whose answer is shown here. Only `codemem.showMemories` is also in package.json (hidden from
 * the palette): the code lens invokes it.
 */
export function serverCommandViews(server: Server): Record<string, (args: unknown[], run: () => Promise<unknown>) => Promise<unknown>> {
  return {
    "codemem.showMemories": async (_args, run) => {
      const r = (await run()) as { memories?: Memory[] } | undefined;
      const memories = r?.memories ?? [];
      if (!memories.length) {
        void vscode.window.showInformationMessage("codemem: no notes here.");
        return r;
      }
      await vscode.window.showQuickPick(
        memories.map((m) => ({
          label: m.text.split("\n")[0],
          description: [m.namespace, ...(m.tags ?? []).map((t) => `#${t}`)].filter(Boolean).join(" "),
          detail: [m.symbol, m.author && `— ${m.author}`].filter(Boolean).join(" "),
        })),
        { title: "Codemem: Notes" },
      );
      return r;
    },
    "codemem.findSimilar": async (args) => {
      const a = (args[0] ?? {}) as { uri?: string; range?: LspRange };
      if (!a.uri || !a.range) return run0();
      await showSimilar(server, a.uri, { range: a.range });
      return undefined;
    },
  };
}

function run0(): Promise<undefined> {
  void vscode.window.showWarningMessage("codemem: Find similar code needs a document and a range.");
  return Promise.resolve(undefined);
}
