// One source of truth for commands: package.json `contributes.commands`. The code, the
// READMEs and the Neovim plugin's docs must agree with it (and with each other).

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { commandHandlers, serverCommandViews } from "../src/commands";

const CODE = path.resolve(__dirname, "..");
const REPO = path.resolve(CODE, "../..");
const read = (p: string) => fs.readFileSync(path.join(REPO, p), "utf8");
const pkg = JSON.parse(read("editors/code/package.json"));
const contributed: { command: string; title: string; category: string }[] = pkg.contributes.commands;
const hidden = new Set<string>(
  (pkg.contributes.menus?.commandPalette ?? []).filter((m: { when?: string }) => m.when === "false").map((m: { command: string }) => m.command),
);
const visibleTitles = contributed.filter((c) => !hidden.has(c.command)).map((c) => `${c.category}: ${c.title}`);
const all = (re: RegExp, text: string) => [...text.matchAll(re)].map((m) => m[1]);
const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

describe("VS Code commands", () => {
  const handlers = Object.keys(commandHandlers({} as never));
  const views = Object.keys(serverCommandViews({} as never));

  it("every registered command is contributed, every contributed one is registered", () => {
    const contributedIds = contributed.map((c) => c.command);
    for (const id of handlers) expect(contributedIds, `${id} is registered but not in package.json`).toContain(id);
    for (const id of contributedIds) {
      expect(handlers.includes(id) || views.includes(id), `${id} is in package.json but nothing handles it`).toBe(true);
    }
    expect(contributedIds).toContain("codemem.showMemories"); // the code lens invokes it
  });

  it("commands are registered in one place only (commandHandlers)", () => {
    const calls = fs
      .readdirSync(path.join(CODE, "src"))
      .flatMap((f) => all(/registerCommand\(([^,]+),/g, fs.readFileSync(path.join(CODE, "src", f), "utf8")));
    expect(calls).toEqual(["id"]);
  });

  it("the README and the extension's README list exactly the palette commands", () => {
    for (const doc of ["README.md", "editors/code/README.md"]) {
      expect(sorted(all(/\*\*(Codemem: [^*]+)\*\*/g, read(doc))), doc).toEqual(sorted(visibleTitles));
    }
  });

  it("menus and activation refer to contributed commands only", () => {
    const ids = new Set(contributed.map((c) => c.command));
    for (const [, items] of Object.entries(pkg.contributes.menus ?? {})) {
      for (const m of items as { command: string }[]) expect(ids.has(m.command), m.command).toBe(true);
    }
  });
});

describe("Neovim commands", () => {
  const plugin = sorted(all(/^ {2}(Codemem\w+) = \{/gm, read("editors/nvim/plugin/codemem.lua")));

  it("the plugin defines the five commands of the issue", () => {
    expect(plugin).toEqual(["CodememReindex", "CodememRemember", "CodememSearch", "CodememSimilar", "CodememStatus"]);
  });

  it("doc/codemem.txt has a help tag for each command, and no other", () => {
    expect(sorted(all(/\*:(Codemem\w+)\*/g, read("editors/nvim/doc/codemem.txt")))).toEqual(plugin);
  });

  it("the README lists each command, and no other", () => {
    expect(sorted(all(/`:(?:\[range\])?(Codemem\w+)/g, read("README.md")))).toEqual(plugin);
  });
});
