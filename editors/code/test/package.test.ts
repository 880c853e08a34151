// `vsce package` validates the manifest and builds the .vsix people install; the packaged
// package.json must list every command and carry the compiled entry point, not the sources.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { commandHandlers } from "../src/commands";

const CODE = path.resolve(__dirname, "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "codemem-vsix-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function zipEntries(file: string): Record<string, string | null> {
  // Python's zipfile is on every CI machine (the test venv needs it); no unzip dependency.
  const script = [
    "import json, sys, zipfile",
    "z = zipfile.ZipFile(sys.argv[1])",
    "want = ('extension/package.json', 'extension.vsixmanifest')",
    "print(json.dumps({n: (z.read(n).decode() if n in want else None) for n in z.namelist()}))",
  ].join("\n");
  return JSON.parse(execFileSync("python3", ["-c", script, file], { encoding: "utf8" }));
}

describe("vsce package", () => {
  it("produces a .vsix whose manifest lists every command", () => {
    const out = path.join(tmp, "codemem.vsix");
    execFileSync("npx", ["vsce", "package", "--allow-missing-repository", "--out", out], { cwd: CODE, stdio: "pipe", timeout: 180_000 });
    const entries = zipEntries(out);
    const manifest = JSON.parse(entries["extension/package.json"]!);
    const ids = manifest.contributes.commands.map((c: { command: string }) => c.command);
    for (const id of Object.keys(commandHandlers({} as never))) expect(ids).toContain(id);
    expect(ids).toContain("codemem.showMemories");
    expect(entries).toHaveProperty("extension/out/main.js");
    expect(entries).toHaveProperty(["extension/node_modules/vscode-languageclient/package.json"]);
    const names = Object.keys(entries);
    expect(names.filter((n) => n.startsWith("extension/src/") || n.startsWith("extension/test") || n.endsWith(".vsix"))).toEqual([]);
    expect(entries["extension.vsixmanifest"]).toContain('Id="codemem"');
  }, 200_000);
});
