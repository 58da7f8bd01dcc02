#!/usr/bin/env node
// Runs `prisma generate`: at install (`postinstall`, so every command works right after `npm ci`), and
// before test, demo and build. The Prisma CLI insists on locating its native schema-engine binary even for
// generate, where it is never executed; without internet it cannot be downloaded. When the variable is
// unset and no engine is installed, point it at a placeholder so generation works offline too.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = new URL("../", import.meta.url);
const prismaCli = fileURLToPath(new URL("node_modules/prisma/build/index.js", root));
if (!existsSync(prismaCli)) {
  // `npm ci --omit=dev` (a production install): the Prisma CLI is a dev dependency. A build already holds
  // the generated client (dist/); failing the install here would help no one.
  console.warn("prisma-generate: the Prisma CLI is not installed (production install?); client not generated");
  process.exit(0);
}
const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) {
  const enginesDir = fileURLToPath(new URL("node_modules/@prisma/engines/", root));
  const hasNativeEngine = existsSync(enginesDir) && readdirSync(enginesDir).some((f) => f.startsWith("schema-engine"));
  if (!hasNativeEngine) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
}
// The CLI itself under this node (no npx: no registry lookup, works offline and inside npm's lifecycle).
const result = spawnSync(process.execPath, [prismaCli, "generate"], {
  stdio: "inherit",
  env,
  cwd: fileURLToPath(root),
});
process.exit(result.status ?? 1);
