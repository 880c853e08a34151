import { describe, expect, it } from "vitest";
import { needsRestart, readSettings } from "../src/config";

const getter = (values: Record<string, unknown>) => <T>(key: string) => values[key] as T | undefined;

describe("settings → initializationOptions", () => {
  it("defaults: model on, MCP on 127.0.0.1:9200, k 20", () => {
    const s = readSettings(getter({}));
    expect(s.initializationOptions).toEqual({ lexicalOnly: false, mcp: { enabled: true, port: 9200, host: "127.0.0.1" } });
    expect(s.k).toBe(20);
    expect(s.serverPath).toBe("");
  });

  it("maps the typed settings and keeps extra codemem.toml keys", () => {
    const s = readSettings(
      getter({
        lexicalOnly: true,
        "mcp.enabled": false,
        "mcp.port": 0,
        "mcp.host": "localhost",
        "search.k": 5,
        serverPath: " /opt/codemem ",
        initializationOptions: { index: { exclude: ["vendor/**"] }, mcp: { allowed_hosts: ["box"] } },
      }),
    );
    expect(s.initializationOptions).toEqual({
      index: { exclude: ["vendor/**"] },
      lexicalOnly: true,
      mcp: { allowed_hosts: ["box"], enabled: false, port: 0, host: "localhost" },
    });
    expect(s.k).toBe(5);
    expect(s.serverPath).toBe("/opt/codemem");
  });

  it("typed settings win over the same keys in codemem.initializationOptions", () => {
    const s = readSettings(getter({ lexicalOnly: false, initializationOptions: { lexicalOnly: true, mcp: { enabled: true } }, "mcp.enabled": false }));
    expect(s.initializationOptions.lexicalOnly).toBe(false);
    expect((s.initializationOptions.mcp as { enabled: boolean }).enabled).toBe(false);
  });

  it("clamps k and ignores a non-object initializationOptions", () => {
    expect(readSettings(getter({ "search.k": 500 })).k).toBe(100);
    expect(readSettings(getter({ "search.k": 0 })).k).toBe(20);
    expect(readSettings(getter({ initializationOptions: [1, 2] })).initializationOptions).not.toHaveProperty("0");
  });

  it("does not mutate the user's settings object", () => {
    const extra = { mcp: { port: 1 } };
    readSettings(getter({ initializationOptions: extra, "mcp.port": 2 }));
    expect(extra).toEqual({ mcp: { port: 1 } });
  });

  it("restarts for server settings only", () => {
    expect(needsRestart((s) => s === "codemem.lexicalOnly")).toBe(true);
    expect(needsRestart((s) => s === "codemem.mcp")).toBe(true);
    expect(needsRestart((s) => s === "codemem.serverPath")).toBe(true);
    expect(needsRestart((s) => s === "codemem.search.k" || s === "codemem.search")).toBe(false);
  });
});
