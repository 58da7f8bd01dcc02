import type { ProviderApi } from "../model/states.ts";
import type { Database } from "./database.ts";
import type { SendOptions } from "../model/send-options.ts";

/** A recurring campaign as stored: Postgres is the truth, BullMQ only times the firings. */
export interface StoredScheduleDefinition {
  name: string;
  cron: string;
  timezone: string;
  audience: string;
  templateId: string;
  params: Record<string, string>;
  paramColumns: Record<string, string>;
  provider: ProviderApi;
  sendOptions: SendOptions;
  templateCheck: boolean;
}

export interface StoredSchedule extends StoredScheduleDefinition {
  createdAt: Date;
  lastRunAt: Date | null;
}

function toStoredSchedule(
  row: Awaited<ReturnType<Database["prisma"]["schedule"]["findMany"]>>[number],
): StoredSchedule {
  return {
    name: row.name,
    cron: row.cron,
    timezone: row.timezone,
    audience: row.audience,
    templateId: row.templateId,
    params: row.params as Record<string, string>,
    paramColumns: row.paramColumns as Record<string, string>,
    provider: row.provider,
    sendOptions: row.sendOptions as SendOptions,
    templateCheck: row.templateCheck,
    createdAt: row.createdAt,
    lastRunAt: row.lastRunAt,
  };
}

export async function upsertSchedule(db: Database, definition: StoredScheduleDefinition): Promise<void> {
  const { name, ...data } = definition;
  const row = { ...data, sendOptions: { ...data.sendOptions } };
  await db.prisma.schedule.upsert({ where: { name }, create: { name, ...row }, update: row });
}

/** Returns whether a schedule of that name existed. */
export async function deleteSchedule(db: Database, name: string): Promise<boolean> {
  const deleted = await db.prisma.schedule.deleteMany({ where: { name } });
  return deleted.count > 0;
}

export async function listStoredSchedules(db: Database): Promise<StoredSchedule[]> {
  const rows = await db.prisma.schedule.findMany({ orderBy: { name: "asc" } });
  return rows.map(toStoredSchedule);
}

export async function findSchedule(db: Database, name: string): Promise<StoredSchedule | null> {
  const row = await db.prisma.schedule.findUnique({ where: { name } });
  return row ? toStoredSchedule(row) : null;
}

export async function markScheduleRun(db: Database, name: string, at: Date): Promise<void> {
  await db.prisma.schedule.update({ where: { name }, data: { lastRunAt: at } });
}

/** Whether a campaign was already launched for this firing (the run key is unique on campaigns). */
export async function campaignRunKeyExists(db: Database, runKey: string): Promise<boolean> {
  const { rows } = await db.pool.query(`SELECT 1 FROM campaigns WHERE run_key = $1`, [runKey]);
  return rows.length > 0;
}
