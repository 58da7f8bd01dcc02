import { userInfo } from "node:os";
import type { Database } from "../store/database.ts";
import { insertAuditEntry, listAuditEntries, type AuditEntry } from "../store/audit-repository.ts";

export type { AuditEntry };

/** Who did it: an API token's name, the OS user running the CLI, or smsblast itself (e.g. the outage prober). */
export type Actor = { kind: "token"; name: string } | { kind: "cli"; user: string } | { kind: "system"; name: string };

export function cliActor(): Actor {
  let user = process.env.USER ?? "unknown";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): the environment's name will do.
  }
  return { kind: "cli", user };
}

export function describeActor(actor: Actor): string {
  if (actor.kind === "system") return `system:${actor.name}`;
  return actor.kind === "token" ? actor.name : `cli:${actor.user}`;
}

/**
 * Records one state-changing action. `details` must hold no phone number or secret: ids, counts, names,
 * reasons only.
 */
export async function recordAudit(
  db: Database,
  actor: Actor,
  action: string,
  entry: { campaignId?: string | null; details?: Record<string, unknown> } = {},
): Promise<void> {
  await insertAuditEntry(db, { actor: describeActor(actor), action, ...entry });
}

export function readAuditLog(
  db: Database,
  options: { limit: number; before?: string; campaignId?: string },
): Promise<AuditEntry[]> {
  return listAuditEntries(db, options);
}
