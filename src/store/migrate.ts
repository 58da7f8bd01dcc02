import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import pg from "pg";
import { UserError } from "../model/errors.ts";

/**
 * Applies prisma/migrations/<name>/migration.sql in name order and records them in `_prisma_migrations`
 * exactly as `prisma migrate deploy` does (same table, sha256 checksum, advisory lock), so the two are
 * interchangeable. Production containers and offline machines need no Prisma CLI or schema engine.
 */
export const MIGRATIONS_DIR = findMigrationsDir(path.dirname(fileURLToPath(import.meta.url)));

/** prisma/migrations of the package, whether this file runs from src/ (tsx) or dist/src/ (compiled). */
function findMigrationsDir(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "prisma", "migrations");
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return path.resolve(from, "../../prisma/migrations");
  }
}
const PRISMA_ADVISORY_LOCK = 72707369;

export interface MigrationReport {
  createdDatabase: boolean;
  applied: string[];
  alreadyApplied: number;
  /** The database's deployment id (created by the first migrate); null with migrations that define none. */
  deploymentId: string | null;
}

export class MigrationError extends UserError {
  override name = "MigrationError";
  constructor(message: string) {
    super("database_not_migrated", message, { kind: "unavailable" });
  }
}

export async function migrateDatabase(
  databaseUrl: string,
  migrationsDir = MIGRATIONS_DIR,
  options: { connectTimeoutMs?: number } = {},
): Promise<MigrationReport> {
  const connectionTimeoutMillis = options.connectTimeoutMs ?? 10_000;
  const createdDatabase = await createDatabaseIfMissing(databaseUrl, connectionTimeoutMillis);
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis });
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [PRISMA_ADVISORY_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0
    )`);
    const { rows } = await client.query<{
      migration_name: string;
      finished_at: Date | null;
      rolled_back_at: Date | null;
    }>(`SELECT migration_name, finished_at, rolled_back_at FROM "_prisma_migrations"`);
    const failed = rows.find((r) => r.finished_at === null && r.rolled_back_at === null);
    if (failed) {
      throw new MigrationError(
        `Migration ${failed.migration_name} failed earlier and was not rolled back; fix the database, then mark it resolved (prisma migrate resolve) before migrating again`,
      );
    }
    const done = new Set(rows.filter((r) => r.finished_at !== null).map((r) => r.migration_name));
    const names = (await readdir(migrationsDir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    const applied: string[] = [];
    for (const name of names) {
      if (done.has(name)) continue;
      const script = await readFile(path.join(migrationsDir, name, "migration.sql"), "utf8");
      const checksum = createHash("sha256").update(script).digest("hex");
      const id = randomUUID();
      await client.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`,
        [id, checksum, name],
      );
      try {
        await client.query("BEGIN");
        await client.query(script);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        const message = error instanceof Error ? error.message : String(error);
        await client.query(`UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1`, [id, message]);
        throw new MigrationError(`Migration ${name} failed: ${message}`);
      }
      await client.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [
        id,
      ]);
      applied.push(name);
    }
    return { createdDatabase, applied, alreadyApplied: done.size, deploymentId: await ensureDeploymentId(client) };
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [PRISMA_ADVISORY_LOCK]).catch(() => {});
    await client.end();
  }
}

/**
 * The migration that creates `deployment` inserts its row; this puts it back if the row was deleted, so every
 * migrated database has exactly one deployment id (the singleton column allows no second row).
 */
async function ensureDeploymentId(client: pg.Client): Promise<string | null> {
  const { rows: table } = await client.query<{ t: string | null }>(`SELECT to_regclass('deployment')::text AS t`);
  if (!table[0]?.t) return null;
  await client.query(`INSERT INTO deployment (singleton) VALUES (true) ON CONFLICT (singleton) DO NOTHING`);
  const { rows } = await client.query<{ id: string }>(`SELECT id::text AS id FROM deployment`);
  return rows[0]?.id ?? null;
}

async function createDatabaseIfMissing(databaseUrl: string, connectionTimeoutMillis: number): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!name) throw new MigrationError("DATABASE_URL names no database (expected .../<database>)");
  url.pathname = "/postgres";
  const admin = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis });
  await admin.connect();
  try {
    const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (rowCount) return false;
    try {
      await admin.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    } catch (error) {
      // Another process created it between our check and our CREATE.
      if ((error as { code?: string }).code !== "42P04") throw error;
      return false;
    }
    return true;
  } finally {
    await admin.end();
  }
}

/**
 * Fails fast when the database lags behind the code (a new release started before `smsblast migrate`):
 * a missing column would otherwise surface only after a batch had been sent.
 */
export async function assertMigrationsApplied(pool: pg.Pool, migrationsDir = MIGRATIONS_DIR): Promise<void> {
  const expected = (await readdir(migrationsDir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  let applied: Set<string>;
  try {
    const { rows } = await pool.query<{ migration_name: string }>(
      `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    applied = new Set(rows.map((r) => r.migration_name));
  } catch (error) {
    if ((error as { code?: string }).code === "42P01") applied = new Set();
    else throw error;
  }
  const missing = expected.filter((name) => !applied.has(name)).sort();
  if (missing.length > 0) {
    throw new MigrationError(
      `The database is missing ${missing.length} migration(s) (${missing.join(", ")}); run \`smsblast migrate\` first`,
    );
  }
}
