import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findServer, isExecutable, SETUP_COMMAND } from "../src/bootstrap";

const env = (files: string[], PATH: string, workspaceFolders: string[] = [], HOME = "/home/u") => ({
  env: { PATH, HOME },
  platform: "linux" as NodeJS.Platform,
  workspaceFolders,
  isExecutable: (f: string) => files.includes(f),
});

describe("server discovery", () => {
  it("uses codemem.serverPath first, even when PATH has one", () => {
    expect(findServer("/opt/cm/codemem", env(["/opt/cm/codemem", "/usr/bin/codemem"], "/usr/bin"))).toEqual({
      path: "/opt/cm/codemem",
      source: "setting",
    });
  });

  it("expands ~ in the setting", () => {
    expect(findServer("~/bin/codemem", env(["/home/u/bin/codemem"], "")).path).toBe("/home/u/bin/codemem");
  });

  it("a setting pointing at nothing is an error, not a silent fallback to PATH", () => {
    const r = findServer("/nope/codemem", env(["/usr/bin/codemem"], "/usr/bin"));
    expect(r.path).toBeUndefined();
    expect("error" in r && r.error).toContain("/nope/codemem");
  });

  it("then PATH, in order", () => {
    const r = findServer("", env(["/b/codemem", "/c/codemem"], "/a::/b:/c"));
    expect(r).toEqual({ path: "/b/codemem", source: "PATH" });
  });

  it("then the workspace's target/release/codemem", () => {
    const r = findServer("", env(["/ws2/target/release/codemem"], "/usr/bin", ["/ws1", "/ws2"]));
    expect(r).toEqual({ path: "/ws2/target/release/codemem", source: "build output" });
  });

  it("nothing found: an error naming every place looked at", () => {
    const r = findServer("", env([], "/usr/bin", ["/ws"]));
    expect(r.path).toBeUndefined();
    expect("error" in r && r.error).toMatch(/serverPath.*PATH.*target\/release\/codemem/);
    expect(SETUP_COMMAND).toBe("scripts/quickstart");
  });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "codemem-bootstrap-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("isExecutable: a real executable file yes, a plain file or a directory no", () => {
    const exe = path.join(dir, "codemem");
    fs.writeFileSync(exe, "#!/bin/sh\n", { mode: 0o755 });
    const plain = path.join(dir, "plain");
    fs.writeFileSync(plain, "", { mode: 0o644 });
    expect(isExecutable(exe)).toBe(true);
    expect(isExecutable(plain)).toBe(false);
    expect(isExecutable(dir)).toBe(false);
    expect(isExecutable(path.join(dir, "missing"))).toBe(false);
    expect(findServer("", { env: { PATH: dir }, platform: "linux", workspaceFolders: [], isExecutable }).path).toBe(exe);
  });
});
