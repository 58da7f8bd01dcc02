#!/usr/bin/env node
// The compiled CLI (after `npm run build`) when it is up to date with src/, else the TypeScript through tsx:
// bin/entry.js decides. SMSBLAST_ENTRY=tsx|compiled forces one.
import { fileURLToPath } from "node:url";
import { chooseEntry } from "./entry.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const entry = process.env.SMSBLAST_ENTRY || chooseEntry(root);
if (entry !== "compiled" && entry !== "tsx") {
  console.error(`SMSBLAST_ENTRY must be "compiled" or "tsx", got "${entry}"`);
  process.exit(2);
}
if (entry === "compiled") {
  const { main } = await import(new URL("../dist/src/cli/main.js", import.meta.url).href);
  await main(process.argv);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  const { main } = await import("../src/cli/main.ts");
  await main(process.argv);
}
