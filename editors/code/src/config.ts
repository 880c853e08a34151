// Settings → `initializationOptions` for `codemem lsp` (codemem.toml keys plus `lexicalOnly`
// and `mcp`). Pure: takes a getter so tests need no editor.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Reads one `codemem.*` setting (the key without the `codemem.` prefix). */
export type SettingGetter = <T>(key: string) => T | undefined;

export interface Settings {
  serverPath: string;
  k: number;
  initializationOptions: { [key: string]: Json };
}

/** Settings whose change needs a new server process (the server reads them at initialize). */
export const RESTART_KEYS = ["serverPath", "lexicalOnly", "mcp", "initializationOptions"] as const;

export function readSettings(get: SettingGetter): Settings {
  const extra = get<{ [key: string]: Json }>("initializationOptions");
  const init: { [key: string]: Json } = isObject(extra) ? structuredClone(extra) : {};
  init.lexicalOnly = get<boolean>("lexicalOnly") ?? false;
  const mcp = isObject(init.mcp) ? init.mcp : {};
  init.mcp = {
    ...mcp,
    enabled: get<boolean>("mcp.enabled") ?? true,
    port: get<number>("mcp.port") ?? 9200,
    host: get<string>("mcp.host") || "127.0.0.1",
  };
  const k = get<number>("search.k");
  return {
    serverPath: (get<string>("serverPath") ?? "").trim(),
    k: typeof k === "number" && k >= 1 ? Math.min(Math.floor(k), 100) : 20,
    initializationOptions: init,
  };
}

export function needsRestart(affects: (section: string) => boolean): boolean {
  return RESTART_KEYS.some((key) => affects(`codemem.${key}`));
}

function isObject(v: unknown): v is { [key: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
