import cronParser from "cron-parser";
import type { Logger } from "../config/logger.ts";
import type { TemplatesApi } from "../engagelab/templates-api.ts";
import { resolveAudience } from "../store/audience-repository.ts";
import type { Database } from "../store/database.ts";
import {
  deleteSchedule,
  findSchedule,
  campaignRunKeyExists,
  listStoredSchedules,
  markScheduleRun,
  upsertSchedule,
  type StoredScheduleDefinition,
} from "../store/schedule-repository.ts";
import {
  checkCampaignTemplate,
  launchAudienceCampaign,
  type CampaignLaunchInput,
  type LaunchDeps,
  type LaunchedCampaign,
} from "./launch-campaign.ts";
import { DEFAULT_LEGACY_VAR_MAX_CHARS } from "../config/config.ts";
import { validateLegacyParams } from "../engagelab/legacy-send-api.ts";
import { UserError, type UserErrorDetails } from "../model/errors.ts";

/** A recurring campaign as the user defines it; the template pre-flight runs when adding and at each firing unless `templateCheck` is false. */
export type ScheduleDefinition = Omit<StoredScheduleDefinition, "templateCheck"> & { templateCheck?: boolean };

/** What the domain needs from the scheduler queue. */
export interface CronScheduler {
  upsert(name: string, cron: string, timezone: string): Promise<void>;
  remove(name: string): Promise<boolean>;
  nextFirings(): Promise<Map<string, Date>>;
  /** Whether BullMQ holds a job for this firing (pending, running or done): then BullMQ runs it, not the catch-up. */
  hasFiringJob(firingId: string): Promise<boolean>;
}

export class ScheduleError extends UserError {
  override name = "ScheduleError";
  constructor(message: string, details: UserErrorDetails = {}) {
    super("invalid_schedule", message, details);
  }
}

/** Checks a cron pattern (5 fields, or 6 with seconds) and an IANA time zone; returns the next firing. */
export function validateCron(cron: string, timezone: string, now = new Date()): Date {
  try {
    new Intl.DateTimeFormat("en", { timeZone: timezone });
  } catch {
    throw new ScheduleError(`time zone "${timezone}" is not an IANA time zone (e.g. Asia/Singapore)`, {
      field: "timezone",
    });
  }
  const fields = cron.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6)
    throw new ScheduleError(`cron expression "${cron}" must have 5 fields (or 6 with seconds), found ${fields}`, {
      field: "cron",
    });
  try {
    return cronParser.parseExpression(cron, { tz: timezone, currentDate: now }).next().toDate();
  } catch (error) {
    throw new ScheduleError(
      `cron expression "${cron}" is not a valid cron pattern (${error instanceof Error ? error.message : String(error)})`,
      {
        field: "cron",
      },
    );
  }
}

/** Saves the definition in Postgres (the truth), then (re)registers its firing times with BullMQ. */
export async function addSchedule(
  deps: {
    db: Database;
    scheduler: CronScheduler;
    templates?: Pick<TemplatesApi, "get">;
    /** LEGACY_VAR_MAX_CHARS (default 16): a legacy schedule's fixed params are checked when it is saved. */
    legacyVarMaxChars?: number;
  },
  definition: ScheduleDefinition,
): Promise<Date> {
  const next = validateCron(definition.cron, definition.timezone);
  if (definition.provider === "legacy")
    validateLegacyParams(definition.params, deps.legacyVarMaxChars ?? DEFAULT_LEGACY_VAR_MAX_CHARS);
  // A schedule whose tag or segment does not exist would fire empty campaigns forever: refuse it now.
  await resolveAudience(deps.db, definition.audience);
  await checkCampaignTemplate(deps.templates, definition);
  await upsertSchedule(deps.db, { ...definition, templateCheck: definition.templateCheck !== false });
  await deps.scheduler.upsert(definition.name, definition.cron, definition.timezone);
  return next;
}

export async function removeSchedule(deps: { db: Database; scheduler: CronScheduler }, name: string): Promise<void> {
  const deleted = await deleteSchedule(deps.db, name);
  const removed = await deps.scheduler.remove(name);
  if (!deleted && !removed)
    throw new ScheduleError(`No schedule named "${name}"`, { kind: "not-found", field: "name" });
}

export async function listSchedules(deps: { db: Database; scheduler: CronScheduler }) {
  const [schedules, next] = await Promise.all([listStoredSchedules(deps.db), deps.scheduler.nextFirings()]);
  return schedules.map((s) => ({ ...s, nextRunAt: next.get(s.name) ?? null }));
}

/** Makes BullMQ's schedulers match Postgres: after a Redis flush, or a schedule removed while Redis was down. */
export async function syncSchedulers(deps: { db: Database; scheduler: CronScheduler; log: Logger }): Promise<number> {
  const schedules = await listStoredSchedules(deps.db);
  for (const s of schedules) await deps.scheduler.upsert(s.name, s.cron, s.timezone);
  const known = new Set(schedules.map((s) => s.name));
  for (const name of (await deps.scheduler.nextFirings()).keys()) {
    if (!known.has(name)) {
      await deps.scheduler.remove(name);
      deps.log.info({ schedule: name }, "removed a scheduler with no schedule in Postgres");
    }
  }
  return schedules.length;
}

/** BullMQ's id for a job scheduler's firing (`repeat:<scheduler id>:<firing millis>`), so a catch-up run shares its run key. */
export function firingIdOf(scheduleName: string, firingAt: Date): string {
  return `repeat:${scheduleName}:${firingAt.getTime()}`;
}

/** The latest firing time of a cron pattern at or before `now`. */
export function previousFiring(cron: string, timezone: string, now: Date): Date {
  // cron-parser's prev() is strictly before currentDate: step 1 ms past now so a firing exactly at now counts.
  return cronParser
    .parseExpression(cron, { tz: timezone, currentDate: new Date(now.getTime() + 1) })
    .prev()
    .toDate();
}

export type CatchUpResult =
  | { schedule: string; firingAt: Date; kind: "caught-up"; outcome: ScheduledRunOutcome["kind"] }
  | { schedule: string; firingAt: Date; kind: "missed" };

/**
 * A scheduler that starts just after a firing was due finds BullMQ's job scheduler already past it: BullMQ
 * registers the next firing and the overdue one is never run. At start-up, each schedule's latest firing
 * that did not become a campaign is run once when it is at most `graceMs` old (the run key, shared with
 * BullMQ's own firing id, keeps it single if BullMQ does run it), and reported as missed when older.
 */
export async function catchUpMissedFirings(
  deps: LaunchDeps & { scheduler: Pick<CronScheduler, "hasFiringJob"> },
  options: { graceMs: number; now?: Date } & Pick<CampaignLaunchInput, "batchSize" | "legacyVarMaxChars">,
): Promise<CatchUpResult[]> {
  const now = options.now ?? new Date();
  const results: CatchUpResult[] = [];
  for (const schedule of await listStoredSchedules(deps.db)) {
    const firingAt = previousFiring(schedule.cron, schedule.timezone, now);
    // A firing before the schedule existed, or one that already ran, is not missed.
    if (firingAt < schedule.createdAt) continue;
    if (schedule.lastRunAt && schedule.lastRunAt >= firingAt) continue;
    const firingId = firingIdOf(schedule.name, firingAt);
    if (await campaignRunKeyExists(deps.db, `${schedule.name}:${firingId}`)) continue;
    if (await deps.scheduler.hasFiringJob(firingId)) continue;
    if (now.getTime() - firingAt.getTime() > options.graceMs) {
      deps.log.warn(
        { schedule: schedule.name, firingAt: firingAt.toISOString() },
        "schedule firing missed (older than SCHEDULE_CATCHUP_MS); not run",
      );
      results.push({ schedule: schedule.name, firingAt, kind: "missed" });
      continue;
    }
    let outcome: ScheduledRunOutcome;
    try {
      outcome = await runScheduledCampaign(deps, schedule.name, firingId, {
        batchSize: options.batchSize,
        legacyVarMaxChars: options.legacyVarMaxChars,
      });
    } catch (error) {
      // One schedule's failed catch-up (e.g. its audience is gone) must not stop the scheduler.
      deps.log.error({ schedule: schedule.name, firingAt: firingAt.toISOString(), err: error }, "catch-up run failed");
      continue;
    }
    deps.log.info(
      { schedule: schedule.name, firingAt: firingAt.toISOString(), result: outcome.kind },
      "missed schedule firing run at start-up",
    );
    results.push({ schedule: schedule.name, firingAt, kind: "caught-up", outcome: outcome.kind });
  }
  return results;
}

export type ScheduledRunOutcome =
  { kind: "launched"; campaign: LaunchedCampaign } | { kind: "already-fired" } | { kind: "schedule-removed" };

/**
 * One firing → one campaign from the audience, as it is in the database at that moment. The firing id is
 * the campaign's unique run key: a repeated firing (a stalled job run twice) cannot create a second campaign.
 */
export async function runScheduledCampaign(
  deps: LaunchDeps,
  scheduleName: string,
  firingId: string,
  limits: Pick<CampaignLaunchInput, "batchSize" | "legacyVarMaxChars">,
): Promise<ScheduledRunOutcome> {
  const schedule = await findSchedule(deps.db, scheduleName);
  if (!schedule) return { kind: "schedule-removed" };
  const runKey = `${scheduleName}:${firingId}`;
  try {
    const campaign = await launchAudienceCampaign(deps, {
      name: `${scheduleName} ${new Date().toISOString()}`,
      audience: schedule.audience,
      templateId: schedule.templateId,
      params: schedule.params,
      paramColumns: schedule.paramColumns,
      provider: schedule.provider,
      onUnknown: "at_most_once",
      ...limits,
      sendOptions: schedule.sendOptions,
      templateCheck: schedule.templateCheck,
      runKey,
    });
    await markScheduleRun(deps.db, scheduleName, new Date());
    return { kind: "launched", campaign };
  } catch (error) {
    if (
      (error as { code?: string }).code === "23505" &&
      String((error as { constraint?: string }).constraint).includes("run_key")
    ) {
      return { kind: "already-fired" };
    }
    throw error;
  }
}
