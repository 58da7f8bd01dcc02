// Every installed package must run on every Node version we support (package.json "engines"): the check that
// `.npmrc` `engine-strict=true` would make at install time, which npm cannot make here because one dev-only
// package excludes Node 20 (see ALLOWED). Runs in `npm test`; `node scripts/check-engines.mjs`.
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import semver from "semver";

// Each exception names the package, the chain that brings it in, and why it never runs in this project.
const ALLOWED = new Map([
  [
    "@prisma/streams-local",
    "prisma (dev) → @prisma/dev → @prisma/streams-local: loaded only by `prisma dev`, which this project never runs",
  ],
]);

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const supported = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).engines.node;
// The lowest version of each supported major line must satisfy every package.
const floors = ["20.19.0", "22.13.0", "24.0.0", "26.0.0"].filter((v) => semver.satisfies(v, supported));

const problems = [];
function visit(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith(".")) continue;
    const full = path.join(dir, entry.name);
    if (entry.name.startsWith("@")) {
      visit(full);
      continue;
    }
    const manifestPath = path.join(full, "package.json");
    if (existsSync(manifestPath)) {
      const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
      const range = manifest.engines?.node;
      if (typeof range === "string" && manifest.name && !ALLOWED.has(manifest.name)) {
        const refused = floors.filter((v) => semver.validRange(range) && !semver.satisfies(v, range));
        if (refused.length > 0)
          problems.push(`${manifest.name}@${manifest.version} needs node ${range} (not ${refused.join(", ")})`);
      }
    }
    visit(path.join(full, "node_modules"));
  }
}
visit(path.join(root, "node_modules"));
if (problems.length > 0) {
  console.error(
    `Packages that do not run on every supported Node version (${supported}):\n  ${[...new Set(problems)].join("\n  ")}`,
  );
  process.exit(1);
}
console.log(`engines: every installed package runs on node ${floors.join(", ")}`);
