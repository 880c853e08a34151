import { Position, Selection, Uri, ui, window, workspace, type FakeDocument } from "./fake-vscode";
import type { Server } from "../src/commands";
import type { ServerStatus } from "../src/status";

export interface Call {
  kind: "request" | "command";
  name: string;
  params: unknown;
}

export function fakeServer(answers: Record<string, unknown | ((params: any) => unknown)>, status?: ServerStatus) {
  const calls: Call[] = [];
  const answer = (name: string, params: unknown) => {
    const a = answers[name];
    if (a === undefined) return Promise.reject(new Error(`unexpected ${name}`));
    return Promise.resolve(typeof a === "function" ? (a as (p: unknown) => unknown)(params) : a);
  };
  const server: Server & { calls: Call[]; restarted: number; cancelled: number } = {
    calls,
    restarted: 0,
    cancelled: 0,
    request: (method, params) => {
      calls.push({ kind: "request", name: method, params });
      return answer(method, params) as Promise<any>;
    },
    executeCommand: (command, args) => {
      calls.push({ kind: "command", name: command, params: args });
      return answer(command, args) as Promise<any>;
    },
    status: () => status,
    cancelIndexing: () => {
      server.cancelled++;
      return true;
    },
    token: async () => "tok-123",
    k: () => 7,
    restart: async () => {
      server.restarted++;
    },
  };
  return server;
}

export function openEditor(path: string, lines: string[], sel: [number, number, number, number]) {
  const uri = Uri.file(path);
  const doc: FakeDocument = {
    uri,
    getText: (r) => {
      if (!r) return lines.join("\n");
      if (r.start.line === r.end.line) return lines[r.start.line].slice(r.start.character, r.end.character);
      return [lines[r.start.line].slice(r.start.character), ...lines.slice(r.start.line + 1, r.end.line), lines[r.end.line].slice(0, r.end.character)].join("\n");
    },
    lineAt: (line) => ({ range: new Selection(new Position(line, 0), new Position(line, lines[line].length)) }),
  };
  window.activeTextEditor = { document: doc, selection: new Selection(new Position(sel[0], sel[1]), new Position(sel[2], sel[3])) };
  return uri;
}

export function hit(path: string, line: number, symbol?: string) {
  return {
    uri: `file:///ws/${path}`,
    range: { start: { line, character: 0 }, end: { line: line + 3, character: 0 } },
    path,
    symbol,
    kind: "function",
    score: 1,
    snippet: `\ndef ${symbol ?? "x"}():\n    pass`,
  };
}

export function setWorkspace(path: string) {
  workspace.workspaceFolders = [{ uri: Uri.file(path), name: "ws", index: 0 }];
}

export { ui };
