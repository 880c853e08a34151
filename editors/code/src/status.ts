// What the status bar item says, from `codemem/status` and the index run's `$/progress`.

export interface RootStatus {
  root: string;
  files?: number;
  pendingFiles?: number;
  points?: number;
  memories?: number;
  indexing?: boolean;
  lastError?: string | null;
}

export interface BackendStatus {
  name: string;
  kind: string;
  healthy: boolean;
  breaker?: string | null;
  detail?: string;
}

export interface ServerStatus {
  state: string;
  error?: string;
  model?: string | null;
  roots: RootStatus[];
  backends: BackendStatus[];
  mcp?: { url: string } | null;
}

export interface Progress {
  title: string;
  message?: string;
  percentage?: number;
}

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;
}

export function unhealthyBackends(s: ServerStatus): string[] {
  return (s.backends ?? [])
    .filter((b) => b.healthy === false)
    .map((b) => `${b.name} (${b.kind}${b.breaker ? `, breaker ${b.breaker}` : ""}): ${b.detail ?? "unhealthy"}`);
}

export function statusView(status: ServerStatus | undefined, progress: Progress | undefined, stopped?: string): StatusView {
  if (stopped) return { text: "$(error) codemem", tooltip: stopped, error: true };
  if (progress) {
    const pct = progress.percentage !== undefined ? ` ${progress.percentage}%` : "";
    return {
      text: `$(sync~spin) codemem${pct}`,
      tooltip: [progress.title, progress.message].filter(Boolean).join(" — "),
      error: false,
    };
  }
  if (!status) return { text: "$(sync~spin) codemem", tooltip: "codemem: starting", error: false };
  const bad = unhealthyBackends(status);
  const errors = status.roots.filter((r) => r.lastError).map((r) => `${r.root}: ${r.lastError}`);
  if (status.state === "error" || bad.length || errors.length) {
    const why = [status.error, ...bad, ...errors].filter(Boolean).join("\n");
    return { text: "$(warning) codemem", tooltip: `codemem: ${why || status.state}`, error: true };
  }
  const files = status.roots.reduce((n, r) => n + (r.files ?? 0), 0);
  const pending = status.roots.reduce((n, r) => n + (r.pendingFiles ?? 0), 0);
  const indexing = status.roots.some((r) => r.indexing);
  const lines = [
    `codemem: ${status.state}${status.model ? ` (${status.model})` : ""}`,
    ...status.roots.map((r) => `${r.root}: ${r.files ?? 0} files, ${r.memories ?? 0} memories`),
  ];
  if (status.mcp?.url) lines.push(`MCP: ${status.mcp.url}`);
  return {
    text: indexing || pending ? `$(sync~spin) codemem ${files} files` : `$(database) codemem ${files} files`,
    tooltip: lines.join("\n"),
    error: false,
  };
}
