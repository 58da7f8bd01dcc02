import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { mkdtemp, mkdir, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { migrateDatabase, MIGRATIONS_DIR, MigrationError } from "../src/store/migrate.ts";

const ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres";
const names: string[] = [];
const urlFor = (suffix: string) => {
  const name = `smsblast_test_migrate_${suffix}_${process.pid}`;
  names.push(name);
  return ADMIN_URL.replace(/postgres$/, name);
};

afterAll(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  for (const name of names) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
});

describe("migrateDatabase", () => {
  it("creates a missing database, applies every migration once, and records them as Prisma does", async () => {
    const url = urlFor("fresh");
    const first = await migrateDatabase(url);
    expect(first.createdDatabase).toBe(true);
    expect(first.applied.length).toBeGreaterThan(0);
    const second = await migrateDatabase(url);
    // The first migrate created the deployment id; later ones keep it.
    expect(first.deploymentId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(second).toEqual({
      createdDatabase: false,
      applied: [],
      alreadyApplied: first.applied.length,
      deploymentId: first.deploymentId,
    });

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{
      migration_name: string;
      checksum: string;
      applied_steps_count: number;
      finished_at: Date | null;
    }>(`SELECT migration_name, checksum, applied_steps_count, finished_at FROM _prisma_migrations`);
    await client.end();
    const name = first.applied[0]!;
    const script = await readFile(path.join(MIGRATIONS_DIR, name, "migration.sql"));
    expect(rows[0]).toMatchObject({
      migration_name: name,
      applied_steps_count: 1,
      checksum: createHash("sha256").update(script).digest("hex"),
    });
    expect(rows[0]?.finished_at).toBeInstanceOf(Date);
  });

  it("records a failing migration and refuses to go past it", async () => {
    const url = urlFor("broken");
    const dir = await mkdtemp(path.join(tmpdir(), "smsblast-migrations-"));
    await mkdir(path.join(dir, "001_ok"));
    await writeFile(path.join(dir, "001_ok", "migration.sql"), "CREATE TABLE a (id int);");
    await mkdir(path.join(dir, "002_bad"));
    await writeFile(path.join(dir, "002_bad", "migration.sql"), "CREATE TABLE b (id int); SELECT no_such_function();");
    await expect(migrateDatabase(url, dir)).rejects.toThrow(/Migration 002_bad failed: .*no_such_function/);
    await expect(migrateDatabase(url, dir)).rejects.toThrow(MigrationError);
    await expect(migrateDatabase(url, dir)).rejects.toThrow(/002_bad failed earlier/);
    await rm(dir, { recursive: true, force: true });
  });
});
