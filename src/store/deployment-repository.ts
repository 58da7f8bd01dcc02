import { MigrationError } from "./migrate.ts";
import type { Database } from "./database.ts";

/**
 * This database's deployment id (table `deployment`, one row created by `smsblast migrate`). It binds the
 * queue namespace to the database: see src/runtime/queue-binding.ts.
 */
export async function readDeploymentId(db: Database): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(`SELECT id::text AS id FROM deployment LIMIT 1`);
  const id = rows[0]?.id;
  if (id === undefined) throw new MigrationError("the database has no deployment id; run `smsblast migrate`");
  return id;
}
