// Which CLI build runs: the compiled JavaScript in dist/ when it exists and no source file is newer than it
// (plain node: no tsx loader or on-the-fly transforms in memory, ~35 MB less), otherwise the TypeScript
// sources through tsx, so a fresh clone needs no build step and a stale build is never run.
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

/** "compiled" or "tsx" for the project at `root` (a directory path). */
export function chooseEntry(root) {
  const compiled = path.join(root, "dist/src/cli/main.js");
  if (!existsSync(compiled)) return "tsx";
  const sources = path.join(root, "src");
  // An image that ships only dist/ has nothing to be stale against.
  if (!existsSync(sources)) return "compiled";
  const builtAt = statSync(compiled).mtimeMs;
  for (const file of readdirSync(sources, { recursive: true })) {
    if (typeof file === "string" && file.endsWith(".ts") && statSync(path.join(sources, file)).mtimeMs > builtAt) {
      return "tsx";
    }
  }
  return "compiled";
}
