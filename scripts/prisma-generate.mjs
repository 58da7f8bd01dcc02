#!/usr/bin/env node
// Runs `prisma generate`. The Prisma CLI insists on locating its native schema-engine binary even for
// generate, where it is never executed; without internet it cannot be downloaded. When the variable
// is unset and no engine is installed, point it at a placeholder so generation works offline too.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) {
  const enginesDir = fileURLToPath(new URL("../node_modules/@prisma/engines/", import.meta.url));
  const hasNativeEngine = existsSync(enginesDir) && readdirSync(enginesDir).some((f) => f.startsWith("schema-engine"));
  if (!hasNativeEngine) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
}
const result = spawnSync("npx", ["prisma", "generate"], { stdio: "inherit", env });
process.exit(result.status ?? 1);
