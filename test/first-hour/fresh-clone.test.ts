import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/cli.ts";

const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

// Issue 13.5: `npm ci` then `npx smsblast migrate` works: the Prisma client is generated at install.
describe("a fresh clone runs right after npm ci", () => {
  const database = `smsblast_test_fresh_clone_${process.pid}`;
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
  });

  it("postinstall generates the client offline, and `smsblast migrate` then works", { timeout: 180_000 }, async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.postinstall).toBe("node scripts/prisma-generate.mjs");

    // The tracked files only, as a clone has them: no src/store/generated/. node_modules is shared (what
    // `npm ci` would have installed); the install step that matters here is the lifecycle script it runs.
    dir = await mkdtemp(path.join(tmpdir(), "smsblast-clone-"));
    const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
      cwd: ROOT,
      encoding: "utf8",
    })
      .split("\0")
      .filter(Boolean);
    for (const file of files)
      if (existsSync(path.join(ROOT, file))) await cp(path.join(ROOT, file), path.join(dir, file), { recursive: true });
    await symlink(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    expect(existsSync(path.join(dir, "src/store/generated/client.ts"))).toBe(false);

    // No network: the registry and Prisma's binary host are unreachable for this child.
    const offline = {
      ...process.env,
      npm_config_offline: "true",
      HTTPS_PROXY: "http://127.0.0.1:1",
      HTTP_PROXY: "http://127.0.0.1:1",
      PRISMA_SCHEMA_ENGINE_BINARY: "",
    };
    const install = spawnSync("npm", ["run", "postinstall"], { cwd: dir, env: offline, encoding: "utf8" });
    expect(install.status, install.stdout + install.stderr).toBe(0);
    expect(existsSync(path.join(dir, "src/store/generated/client.ts"))).toBe(true);

    const migrate = spawnSync(process.execPath, ["bin/smsblast.js", "migrate"], {
      cwd: dir,
      env: { ...offline, DATABASE_URL: ADMIN_URL.replace(/\/[^/]*$/, `/${database}`) },
      encoding: "utf8",
    });
    expect(migrate.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND/);
    expect(migrate.status, migrate.stderr).toBe(0);
    expect(migrate.stdout).toMatch(/^created the database; applied \d+ migration\(s\)/);
  });
});
