import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// `vscode` only exists inside the editor; unit tests get a small fake with the same shape.
export default defineConfig({
  resolve: { alias: { vscode: fileURLToPath(new URL("./test/fake-vscode.ts", import.meta.url)) } },
  test: { include: ["test/**/*.test.ts", "test-lsp/**/*.test.ts"], hookTimeout: 300_000, testTimeout: 60_000 },
});
