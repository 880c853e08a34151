// Finding the `codemem` binary: the `codemem.serverPath` setting, then PATH, then a
// workspace's own build output (`target/release/codemem`, for people working on codemem).

import * as fs from "node:fs";
import * as path from "node:path";

/** What to run in a codemem checkout: fetches the model, builds and installs `codemem` into ~/.cargo/bin. */
export const SETUP_COMMAND = "scripts/quickstart";

export interface Environment {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  workspaceFolders: string[];
  isExecutable(file: string): boolean;
}

export type Discovery =
  | { path: string; source: "setting" | "PATH" | "build output" }
  | { path?: undefined; error: string };

export function findServer(serverPath: string, e: Environment): Discovery {
  const exe = e.platform === "win32" ? "codemem.exe" : "codemem";
  if (serverPath) {
    const p = expandHome(serverPath, e.env);
    if (e.isExecutable(p)) return { path: p, source: "setting" };
    return { error: `codemem.serverPath is set to ${serverPath}, but no executable is there.` };
  }
  const sep = e.platform === "win32" ? ";" : ":";
  for (const dir of (e.env.PATH ?? "").split(sep)) {
    if (!dir) continue;
    const p = path.join(dir, exe);
    if (e.isExecutable(p)) return { path: p, source: "PATH" };
  }
  for (const root of e.workspaceFolders) {
    const p = path.join(root, "target", "release", exe);
    if (e.isExecutable(p)) return { path: p, source: "build output" };
  }
  return { error: "No codemem binary found (codemem.serverPath, PATH, target/release/codemem)." };
}

export function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function expandHome(p: string, env: NodeJS.ProcessEnv): string {
  const home = env.HOME ?? env.USERPROFILE;
  return home && (p === "~" || p.startsWith("~/")) ? path.join(home, p.slice(1)) : p;
}
