#!/usr/bin/env node
// In production (NODE_ENV=production, after `npm run build`) the compiled CLI runs under plain node;
// otherwise the TypeScript runs through tsx, so a fresh clone needs no build step.
import { existsSync } from "node:fs";

const compiled = new URL("../dist/src/cli/main.js", import.meta.url);
if (process.env.NODE_ENV === "production" && existsSync(compiled)) {
  const { main } = await import(compiled.href);
  await main(process.argv);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  const { main } = await import("../src/cli/main.ts");
  await main(process.argv);
}
