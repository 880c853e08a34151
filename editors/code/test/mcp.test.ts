import { describe, expect, it } from "vitest";
import { mcpConfig, targetFor } from "../src/mcp";

describe("MCP config", () => {
  it("Cursor: mcpServers with url and bearer header", () => {
    expect(JSON.parse(mcpConfig("cursor", "http://127.0.0.1:9200/mcp", "t0k"))).toEqual({
      mcpServers: { codemem: { url: "http://127.0.0.1:9200/mcp", headers: { Authorization: "Bearer t0k" } } },
    });
  });

  it("VS Code: servers with type http", () => {
    expect(JSON.parse(mcpConfig("vscode", "http://h/mcp", "t"))).toEqual({
      servers: { codemem: { type: "http", url: "http://h/mcp", headers: { Authorization: "Bearer t" } } },
    });
  });

  it("keeps the other servers and keys of an existing file, replaces an old codemem entry", () => {
    const old = JSON.stringify({ inputs: [], servers: { other: { command: "x" }, codemem: { url: "old" } } });
    expect(JSON.parse(mcpConfig("vscode", "http://new/mcp", "t", old))).toEqual({
      inputs: [],
      servers: { other: { command: "x" }, codemem: { type: "http", url: "http://new/mcp", headers: { Authorization: "Bearer t" } } },
    });
  });

  it("refuses to overwrite a file that is not a JSON object", () => {
    expect(() => mcpConfig("cursor", "u", "t", "[1]")).toThrow(/not a JSON object/);
    expect(() => mcpConfig("cursor", "u", "t", "{oops")).toThrow();
  });

  it("Cursor is recognised by its app name", () => {
    expect(targetFor("Cursor")).toBe("cursor");
    expect(targetFor("Visual Studio Code")).toBe("vscode");
    expect(targetFor("Visual Studio Code - Insiders")).toBe("vscode");
  });
});
