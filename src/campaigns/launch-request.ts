import { createHash } from "node:crypto";
import { UserError } from "../model/errors.ts";
import type { SendOptions } from "../model/send-options.ts";
import type { Database } from "../store/database.ts";
import { deleteExpiredIdempotencyKeys, runOnce } from "../store/idempotency-repository.ts";

/** The provider options of a launch, as both front doors receive them (flags or JSON fields). */
export interface LaunchSendOptions {
  from?: string;
  msgType?: number;
  labelId?: number;
  customArgs?: Record<string, string>;
  startAt?: Date;
  /** With `startAt`: hand the time to EngageLab (`schedule_time`) instead of a delayed start job. */
  providerSchedule?: boolean;
  /** Replies that opt a recipient out, besides the standard words. */
  optOutKeywords?: string[];
}

/** Provider-specific options as stored in Campaign.sendOptions. */
export function sendOptionsOf(options: LaunchSendOptions): SendOptions {
  const sendOptions: SendOptions = {};
  if (options.from !== undefined) sendOptions.from = options.from;
  if (options.msgType !== undefined) sendOptions.msgType = options.msgType;
  if (options.labelId !== undefined) sendOptions.labelId = options.labelId;
  if (options.customArgs && Object.keys(options.customArgs).length > 0) sendOptions.customArgs = options.customArgs;
  if (options.optOutKeywords && options.optOutKeywords.length > 0) {
    for (const keyword of options.optOutKeywords) {
      if (!/^[\p{L}\p{N}]{2,20}$/u.test(keyword))
        throw new UserError(
          "invalid_opt_out_keyword",
          `opt-out keyword "${keyword}" must be one word of 2 to 20 letters or digits (a reply must be exactly it)`,
          { field: "optOutKeywords" },
        );
    }
    sendOptions.optOutKeywords = [...new Set(options.optOutKeywords.map((k) => k.toUpperCase()))];
  }
  if (options.providerSchedule) {
    if (options.startAt === undefined)
      throw new UserError("invalid_schedule", "provider scheduling needs a start time", { field: "startAt" });
    sendOptions.scheduleTime = Math.floor(options.startAt.getTime() / 1000);
  }
  return sendOptions;
}

/** Without provider scheduling, a start time is a delayed launch held by smsblast (a delayed start job). */
export function delayedStartOf(options: LaunchSendOptions): Date | undefined {
  return options.startAt && !options.providerSchedule ? options.startAt : undefined;
}

/** How long an `Idempotency-Key` is remembered (per token). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export class IdempotencyKeyReusedError extends UserError {
  override name = "IdempotencyKeyReusedError";
  constructor() {
    super(
      "idempotency_key_reused",
      "this Idempotency-Key was used with a different request; use a new key for a new campaign",
      {
        field: "Idempotency-Key",
        kind: "conflict",
      },
    );
  }
}

export type OnceOutcome<T> = { replayed: false; value: T } | { replayed: true; value: T };

/**
 * Runs a launch once per (token, key): a retry with the same key and the same request gets the first
 * answer back; the same key with another request is refused. The request is compared by the SHA-256 of
 * its canonical JSON (keys sorted), so field order does not matter.
 */
export async function launchOnce<T extends { campaignId: string | null }>(
  db: Database,
  scope: { tokenId: string; key: string; request: unknown },
  launch: () => Promise<T>,
): Promise<OnceOutcome<T>> {
  if (!/^[\x21-\x7e]{1,255}$/.test(scope.key)) {
    throw new UserError("invalid_idempotency_key", "an Idempotency-Key is 1 to 255 visible ASCII characters", {
      field: "Idempotency-Key",
    });
  }
  const requestHash = createHash("sha256").update(canonicalJson(scope.request)).digest("hex");
  const outcome = await runOnce(
    db,
    { tokenId: scope.tokenId, key: scope.key, requestHash, ttlMs: IDEMPOTENCY_TTL_MS },
    async () => {
      const value = await launch();
      return { value, campaignId: value.campaignId };
    },
  );
  if (outcome.kind === "mismatch") throw new IdempotencyKeyReusedError();
  return { replayed: outcome.kind === "replay", value: outcome.value };
}

export function forgetExpiredIdempotencyKeys(db: Database): Promise<number> {
  return deleteExpiredIdempotencyKeys(db, IDEMPOTENCY_TTL_MS);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
