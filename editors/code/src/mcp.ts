// The MCP config an editor's agent reads: Cursor's `.cursor/mcp.json` ({mcpServers}) or
// VS Code's `.vscode/mcp.json` ({servers}), pointing at the MCP endpoint inside `codemem lsp`.

export type McpTarget = "cursor" | "vscode";

export const MCP_FILES: Record<McpTarget, string> = {
  cursor: ".cursor/mcp.json",
  vscode: ".vscode/mcp.json",
};

/** Cursor reports itself in `vscode.env.appName`; everything else gets the VS Code format. */
export function targetFor(appName: string): McpTarget {
  return /cursor/i.test(appName) ? "cursor" : "vscode";
}

/** `existing` merged with the codemem entry; other servers and keys are kept. */
export function mcpConfig(target: McpTarget, url: string, token: string, existing?: string): string {
  let doc: Record<string, unknown> = {};
  if (existing && existing.trim()) {
    const parsed: unknown = JSON.parse(existing);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error(`${MCP_FILES[target]} is not a JSON object`);
    }
    doc = parsed as Record<string, unknown>;
  }
  const key = target === "cursor" ? "mcpServers" : "servers";
  const servers = (typeof doc[key] === "object" && doc[key] !== null ? doc[key] : {}) as Record<string, unknown>;
  const headers = { Authorization: `Bearer ${token}` };
  servers.codemem = target === "cursor" ? { url, headers } : { type: "http", url, headers };
  doc[key] = servers;
  return JSON.stringify(doc, null, 2) + "\n";
}
