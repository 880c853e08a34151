import { describe, expect, it } from "vitest";
import { statusView, type ServerStatus } from "../src/status";

const ready: ServerStatus = {
  state: "ready",
  model: "all-minilm-l6-v2-int8",
  roots: [{ root: "/ws", files: 12, pendingFiles: 0, memories: 2, indexing: false, lastError: null }],
  backends: [{ name: "vectors", kind: "embedded", healthy: true, breaker: null, detail: "qdrant-edge" }],
  mcp: { url: "http://127.0.0.1:9200/mcp" },
};

describe("status bar", () => {
  it("progress wins: spinner with the percentage and the message in the tooltip", () => {
    const v = statusView(ready, { title: "codemem: indexing ws", message: "embedding 3/10 chunks", percentage: 65 });
    expect(v.text).toBe("$(sync~spin) codemem 65%");
    expect(v.tooltip).toBe("codemem: indexing ws — embedding 3/10 chunks");
  });

  it("ready: file count, model, MCP URL", () => {
    const v = statusView(ready, undefined);
    expect(v.text).toBe("$(database) codemem 12 files");
    expect(v.tooltip).toContain("all-minilm-l6-v2-int8");
    expect(v.tooltip).toContain("http://127.0.0.1:9200/mcp");
    expect(v.error).toBe(false);
  });

  it("an unhealthy backend turns it into a warning naming the backend", () => {
    const v = statusView(
      { ...ready, backends: [{ name: "cache", kind: "redis", healthy: false, breaker: "open", detail: "connection refused" }] },
      undefined,
    );
    expect(v.error).toBe(true);
    expect(v.text).toBe("$(warning) codemem");
    expect(v.tooltip).toContain("cache (redis, breaker open): connection refused");
  });

  it("an index error and a stopped server are errors", () => {
    expect(statusView({ ...ready, roots: [{ root: "/ws", lastError: "disk full" }] }, undefined).tooltip).toContain("/ws: disk full");
    expect(statusView(ready, undefined, "server stopped").error).toBe(true);
  });

  it("before the first status: starting", () => {
    expect(statusView(undefined, undefined).tooltip).toBe("codemem: starting");
  });
});
