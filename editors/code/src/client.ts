// One `codemem lsp` process and what the editor shows about it: the status bar item (from
// codemem/status and the index run's $/progress) and the views for server commands.

import { execFile } from "node:child_process";
import * as vscode from "vscode";
import {
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  type ProgressToken,
} from "vscode-languageclient/node";
import type { Server } from "./commands";
import { serverCommandViews } from "./commands";
import type { Settings } from "./config";
import { statusView, type Progress, type ServerStatus } from "./status";

export class CodememServer implements Server {
  private client: LanguageClient | undefined;
  private lastStatus: ServerStatus | undefined;
  private readonly runs = new Map<ProgressToken, Progress>();
  private stopped: string | undefined;

  constructor(
    private readonly bar: vscode.StatusBarItem,
    private readonly output: vscode.LogOutputChannel,
    private settings: Settings,
    private binary: string,
  ) {}

  async start(): Promise<void> {
    const serverOptions: ServerOptions = {
      command: this.binary,
      args: ["lsp"],
      transport: TransportKind.stdio,
    };
    const views = serverCommandViews(this);
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }],
      initializationOptions: this.settings.initializationOptions,
      outputChannel: this.output,
      middleware: {
        executeCommand: (command, args, next) => {
          const view = views[command];
          return view ? view(args, async () => next(command, args)) : next(command, args);
        },
      },
    };
    const client = new LanguageClient("codemem", "codemem", serverOptions, clientOptions);
    this.client = client;
    this.stopped = undefined;
    this.render();
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped && this.client === client) {
        this.stopped = "codemem: the server stopped; run “Codemem: Restart Server”. See the codemem output for why.";
        this.runs.clear();
        this.render();
      }
    });
    client.onNotification("codemem/status", (s: ServerStatus) => {
      this.lastStatus = s;
      this.render();
    });
    try {
      await client.start();
    } catch (e) {
      this.stopped = `codemem: the server did not start: ${e instanceof Error ? e.message : String(e)}`;
      this.render();
      throw e;
    }
    // The index run's progress feeds the status bar. Registered after start(): the client's
    // built-in progress feature installs its own handler while starting and would replace ours.
    client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      const sub = client.onProgress(WorkDoneProgress.type, token, (v) => {
        if (v.kind === "begin") this.runs.set(token, { title: v.title, message: v.message, percentage: v.percentage });
        else if (v.kind === "report") {
          const run = this.runs.get(token) ?? { title: "codemem: indexing" };
          this.runs.set(token, { ...run, message: v.message ?? run.message, percentage: v.percentage ?? run.percentage });
        } else {
          this.runs.delete(token);
          sub.dispose();
        }
        this.render();
      });
    });
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.runs.clear();
    if (client && client.state !== State.Stopped) await client.stop();
  }

  async restart(): Promise<void> {
    await this.stop();
    this.lastStatus = undefined;
    await this.start();
  }

  async update(settings: Settings, binary: string): Promise<void> {
    this.settings = settings;
    this.binary = binary;
    await this.restart();
  }

  setSettingsWithoutRestart(settings: Settings): void {
    this.settings = settings;
  }

  private running(): LanguageClient {
    if (!this.client || !this.client.isRunning()) throw new Error("the codemem server is not running");
    return this.client;
  }

  request<R>(method: string, params: unknown, token?: vscode.CancellationToken): Promise<R> {
    return this.running().sendRequest<R>(method, params, token);
  }

  executeCommand<R>(command: string, args: unknown[]): Promise<R> {
    return this.running().sendRequest<R>("workspace/executeCommand", { command, arguments: args });
  }

  status(): ServerStatus | undefined {
    return this.lastStatus;
  }

  cancelIndexing(): boolean {
    if (!this.client || !this.runs.size) return false;
    for (const token of this.runs.keys()) {
      void this.client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
    }
    return true;
  }

  token(): Promise<string> {
    return new Promise((resolve, reject) =>
      execFile(this.binary, ["token"], { timeout: 10_000 }, (err, stdout, stderr) => {
        const token = stdout.trim();
        if (err || !token) reject(new Error((stderr || err?.message || "no output").trim()));
        else resolve(token);
      }),
    );
  }

  k(): number {
    return this.settings.k;
  }

  private render(): void {
    const progress = [...this.runs.values()].at(-1);
    const view = statusView(this.lastStatus, progress, this.stopped);
    this.bar.text = view.text;
    this.bar.tooltip = view.tooltip;
    this.bar.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    this.bar.show();
  }
}
