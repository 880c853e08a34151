// Extension entry: find the server, start it, register the commands, follow setting changes.

import * as vscode from "vscode";
import { findServer, isExecutable, SETUP_COMMAND } from "./bootstrap";
import { CodememServer } from "./client";
import { commandHandlers } from "./commands";
import { needsRestart, readSettings } from "./config";

let server: CodememServer | undefined;

function settings() {
  const cfg = vscode.workspace.getConfiguration("codemem");
  return readSettings((key) => cfg.get(key));
}

function locate(serverPath: string): string | undefined {
  const found = findServer(serverPath, {
    env: process.env,
    platform: process.platform,
    workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
    isExecutable,
  });
  if (found.path !== undefined) return found.path;
  void vscode.window
    .showErrorMessage(
      `codemem: ${found.error} In a codemem checkout run \`${SETUP_COMMAND}\` (builds and installs codemem into ~/.cargo/bin with its model), or set codemem.serverPath.`,
      "Open Settings",
      "Copy Command",
    )
    .then((choice) => {
      if (choice === "Open Settings") void vscode.commands.executeCommand("workbench.action.openSettings", "codemem.serverPath");
      if (choice === "Copy Command") void vscode.env.clipboard.writeText(SETUP_COMMAND);
    });
  return undefined;
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("codemem", { log: true });
  const bar = vscode.window.createStatusBarItem("codemem.status", vscode.StatusBarAlignment.Left, 0);
  bar.name = "codemem";
  bar.command = "codemem.showStatus";
  context.subscriptions.push(output, bar);

  const proxy = {
    request: <R>(m: string, p: unknown, t?: vscode.CancellationToken) => need().request<R>(m, p, t),
    executeCommand: <R>(c: string, a: unknown[]) => need().executeCommand<R>(c, a),
    status: () => server?.status(),
    cancelIndexing: () => server?.cancelIndexing() ?? false,
    token: () => need().token(),
    k: () => settings().k,
    restart: () => start(),
  };
  const need = () => {
    if (!server) throw new Error("the codemem server is not running (see the notification about the binary)");
    return server;
  };
  for (const [id, handler] of Object.entries(commandHandlers(proxy))) {
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));
  }

  const start = async () => {
    await server?.stop();
    server = undefined;
    const s = settings();
    const binary = locate(s.serverPath);
    if (!binary) {
      bar.text = "$(error) codemem";
      bar.tooltip = "codemem: no server binary";
      bar.show();
      return;
    }
    server = new CodememServer(bar, output, s, binary);
    await server.start().catch((e) => output.error(`start failed: ${e}`));
  };

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration("codemem")) return;
      if (needsRestart((section) => e.affectsConfiguration(section))) void start();
      else server?.setSettingsWithoutRestart(settings());
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}
