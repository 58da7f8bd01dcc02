import type { Database } from "./database.ts";

export interface AuditEntry {
  id: string;
  actor: string;
  action: string;
  campaignId: string | null;
  details: Record<string, unknown>;
  createdAt: Date;
}

export async function insertAuditEntry(
  db: Database,
  entry: { actor: string; action: string; campaignId?: string | null; details?: Record<string, unknown> },
): Promise<void> {
  await db.pool.query(`INSERT INTO audit_log (actor, action, campaign_id, details) VALUES ($1, $2, $3, $4)`, [
    entry.actor,
    entry.action,
    entry.campaignId ?? null,
    JSON.stringify(entry.details ?? {}),
  ]);
}

/** Newest first, keyset-paged by id (`before` = the last id of the previous page). */
export async function listAuditEntries(
  db: Database,
  options: { limit: number; before?: string; campaignId?: string },
): Promise<AuditEntry[]> {
  const { rows } = await db.pool.query<{
    id: string;
    actor: string;
    action: string;
    campaign_id: string | null;
    details: Record<string, unknown>;
    created_at: Date;
  }>(
    `SELECT id, actor, action, campaign_id, details, created_at FROM audit_log
     WHERE ($2::bigint IS NULL OR id < $2::bigint) AND ($3::uuid IS NULL OR campaign_id = $3::uuid)
     ORDER BY id DESC LIMIT $1`,
    [options.limit, options.before ?? null, options.campaignId ?? null],
  );
  return rows.map((r) => ({
    id: r.id,
    actor: r.actor,
    action: r.action,
    campaignId: r.campaign_id,
    details: r.details,
    createdAt: r.created_at,
  }));
}
