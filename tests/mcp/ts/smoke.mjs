// Smoke test with the official TypeScript MCP SDK: connects to codemem over stdio
// (CODEMEM_STDIO_ROOT set: spawns `$CODEMEM_BIN --root ROOT mcp`) or streamable HTTP
// (CODEMEM_MCP_URL + CODEMEM_MCP_TOKEN), calls every tool once and prints one JSON line.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

function fail(msg) {
  console.error(`smoke: ${msg}`);
  process.exit(1);
}

const env = process.env;
const transport = env.CODEMEM_STDIO_ROOT
  ? new StdioClientTransport({ command: env.CODEMEM_BIN, args: ["--root", env.CODEMEM_STDIO_ROOT, "mcp"], env, stderr: "inherit" })
  : new StreamableHTTPClientTransport(new URL(env.CODEMEM_MCP_URL), {
      requestInit: { headers: { Authorization: `Bearer ${env.CODEMEM_MCP_TOKEN}` } },
    });

const client = new Client({ name: "codemem-ts-smoke", version: "1.0.0" });
await client.connect(transport);

const tools = (await client.listTools()).tools.map((t) => t.name).sort();
const call = async (name, args) => {
  const r = await client.callTool({ name, arguments: args });
  if (r.isError) fail(`${name} failed: ${r.content?.[0]?.text}`);
  return r;
};

// Wait until the background index run has embedded everything (at most 5 minutes).
for (let i = 0; ; i++) {
  const st = (await call("index_status", {})).structuredContent;
  if (st.state === "ready" && st.roots.every((r) => r.pending_files === 0 && r.files_indexed > 0)) break;
  if (i > 600) fail(`index not ready: ${JSON.stringify(st).slice(0, 500)}`);
  await new Promise((r) => setTimeout(r, 500));
}

const progress = [];
const search = await call("search_code", { query: "token bucket rate limiter" });
const symbol = await call("find_symbol", { name: "TokenBucket" });
const remembered = await call("remember", { text: "TypeScript smoke test memory about the rate limiter.", namespace: "shared" });
const id = remembered.structuredContent.id;
const recalled = await call("recall", { query: "typescript smoke rate limiter memory" });
await call("forget", { id });
const status = await call("index_status", {});
const namespaces = await call("list_namespaces", {});
await client.callTool({ name: "reindex", arguments: {} }, undefined, {
  onprogress: (p) => progress.push(p.progress),
});
const bad = await client.callTool({ name: "search_code", arguments: { query: 42 } });

console.log(
  JSON.stringify({
    tools,
    topHit: search.structuredContent.hits[0]?.path,
    symbolPath: symbol.structuredContent.matches[0]?.path,
    recalled: recalled.structuredContent.hits.some((h) => h.memory?.id === id),
    state: status.structuredContent.state,
    namespaces: namespaces.structuredContent.namespaces.map((n) => n.name),
    progress,
    badIsError: bad.isError === true,
    badText: bad.content?.[0]?.text,
  }),
);
await client.close();
