import { createHash } from "node:crypto";
import { UserError } from "../model/errors.ts";
import { MAX_CAMPAIGN_RATE_PER_SECOND, type SendOptions } from "../model/send-options.ts";
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
  /** The campaign's own send rate, messages per second (`--rate`, `ratePerSecond`). */
  ratePerSecond?: number;
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
  if (options.ratePerSecond !== undefined) {
    const rate = options.ratePerSecond;
    if (!Number.isFinite(rate) || rate <= 0 || rate > MAX_CAMPAIGN_RATE_PER_SECOND)
      throw new UserError(
        "invalid_rate",
        `the campaign rate must be above 0 and at most ${MAX_CAMPAIGN_RATE_PER_SECOND} messages per second, got ${rate}`,
        { field: "ratePerSecond" },
      );
    sendOptions.ratePerSecond = rate;
  }
  if (options.providerSchedule) {
    if (options.startAt === undefined)
      throw new UserError("invalid_schedule", "provider scheduling needs a start time", { field: "startAt" });
    sendOptions.scheduleTime = Math.floor(options.startAt.getTime() / 1000);
  }
  return sendOptions;
}

const RATE_UNITS: Record<string, number> = { s: 1, sec: 1, second: 1, m: 60, min: 60, minute: 60, h: 3600, hour: 3600 };

/**
 * `--rate 50/s`, `600/min`, `1000/h` or a bare `50` (per second) → messages per second; anything else is
 * refused with the forms it takes.
 */
export function parseRate(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([a-z]+))?\s*$/i.exec(value);
  const unit = RATE_UNITS[(match?.[2] ?? "s").toLowerCase()];
  const count = Number(match?.[1]);
  if (!match || unit === undefined || !(count > 0))
    throw new UserError(
      "invalid_rate",
      `--rate must be messages per second, minute or hour above 0, such as 50/s, 600/min or 1000/h; got "${value}"`,
      { field: "rate" },
    );
  return count / unit;
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
