import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { deliveryEventKeyColumns } from "../model/delivery-keys.ts";
import { UserError } from "../model/errors.ts";
import type { Database } from "../store/database.ts";
import {
  applyStoredEvents,
  ensureWorkListStatistics,
  markNoReport,
  nextDeliveryAttemptInMs,
  purgeDeliveryRows,
  storeCallbackRows,
  type ApplyOptions,
  type ApplyReport,
  type CallbackSource,
  emptyApplyReport,
  UUID_PATTERN,
} from "../store/delivery-repository.ts";

// Delivery callbacks in (verify, store, answer), applied later in bulk by the delivery queue.
// The two verification schemes are docs/engagelab-apis.md#current-platform-callback and #legacy-smshook.

export type { ApplyReport, CallbackSource };

/** Why a callback was refused: the receiver's status code and its refusal metric come from this. */
export type CallbackRefusalReason =
  "not_configured" | "unauthenticated" | "bad_signature" | "stale_timestamp" | "malformed";

export class CallbackRefusedError extends UserError {
  override name = "CallbackRefusedError";
  constructor(
    readonly reason: CallbackRefusalReason,
    message: string,
  ) {
    super(`callback_${reason}`, message, { kind: reason === "malformed" ? "invalid" : "unavailable" });
  }
}

export interface CallbackCredentials {
  engagelab: { username: string; secret: string } | undefined;
  smshook: { appKey: string; secret: string } | undefined;
  /** Timestamp window either side of now. */
  maxSkewMs: number;
}

export interface ReceivedCallback {
  source: CallbackSource;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export type CallbackOutcome = { kind: "verification" } | { kind: "stored"; rows: number } | { kind: "replay" };

export interface ReceiveCallbackDeps {
  db: Database;
  credentials: CallbackCredentials;
  nowMs?: () => number;
}

/**
 * Verifies a callback and stores its rows with its nonce in one statement. An empty body (or `{}`) is
 * the provider's URL check: answered without touching anything. Nothing is stored unless every check
 * passes, so a refused callback changes no state.
 */
export async function receiveDeliveryCallback(
  deps: ReceiveCallbackDeps,
  callback: ReceivedCallback,
): Promise<CallbackOutcome> {
  const text = callback.body.toString("utf8").trim();
  if (text === "" || text === "{}") return { kind: "verification" };
  const nowMs = deps.nowMs?.() ?? Date.now();
  const nonce =
    callback.source === "engagelab"
      ? verifyCallbackId(header(callback.headers, "x-callback-id"), deps.credentials, nowMs)
      : verifySmsHook(callback.headers, callback.body, deps.credentials, nowMs);
  const rows = parseCallbackRows(text, callback.source);
  if (rows.length === 0) return { kind: "verification" };
  const status = rows.filter((row) => row.type !== "uplink");
  const uplinks = status.length === rows.length ? [] : rows.filter((row) => row.type === "uplink");
  return storeCallbackRows(deps.db, callback.source, nonce, {
    // The body as received when it is exactly {"rows": [status rows]}: Postgres takes its rows itself,
    // so the receiver does not serialise 30 KB again per callback.
    ...(status.length === rows.length && callback.source === "engagelab"
      ? { statusJson: text, statusJsonIsBody: true }
      : { statusJson: JSON.stringify(status), statusJsonIsBody: false }),
    statusCount: status.length,
    keys: deliveryEventKeyColumns(status),
    uplinkJson: JSON.stringify(uplinks),
    uplinkCount: uplinks.length,
    campaignId: commonCampaign(status),
  });
}

/** The campaign id every row's custom_args names (a UUID), or null when they differ or one has none. */
function commonCampaign(rows: Record<string, unknown>[]): string | null {
  let campaign: string | null = null;
  for (const row of rows) {
    const args = row.custom_args;
    const id = isObject(args) && typeof args.campaign_id === "string" ? args.campaign_id.toLowerCase() : null;
    if (id === null || !UUID_PATTERN.test(id) || (campaign !== null && id !== campaign)) return null;
    campaign = id;
  }
  return campaign;
}

function header(headers: ReceivedCallback["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `X-CALLBACK-ID: timestamp=…;nonce=…;username=…;signature=hex(HMAC-SHA256(secret, timestamp+nonce+username))`. Returns the nonce. */
export function verifyCallbackId(value: string | undefined, credentials: CallbackCredentials, nowMs: number): string {
  const expected = credentials.engagelab;
  if (!expected)
    throw new CallbackRefusedError(
      "not_configured",
      "delivery callbacks are not configured (CALLBACK_USERNAME / CALLBACK_SECRET)",
    );
  if (value === undefined) throw new CallbackRefusedError("bad_signature", "X-CALLBACK-ID header missing");
  const fields = new Map<string, string>();
  for (const part of value.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const timestamp = fields.get("timestamp");
  const nonce = fields.get("nonce");
  const username = fields.get("username");
  const signature = fields.get("signature");
  if (!timestamp || !nonce || !username || !signature) {
    throw new CallbackRefusedError("bad_signature", "X-CALLBACK-ID needs timestamp, nonce, username and signature");
  }
  const computed = createHmac("sha256", expected.secret)
    .update(timestamp + nonce + username)
    .digest("hex");
  // Both compared in full whatever the first result, so timing tells nothing about which one failed.
  const userOk = safeEqual(username, expected.username);
  const signatureOk = safeEqual(signature.toLowerCase(), computed);
  if (!userOk || !signatureOk) throw new CallbackRefusedError("bad_signature", "signature does not match");
  assertFresh(timestamp, nowMs, credentials.maxSkewMs);
  return `engagelab:${nonce}`;
}

/** SMSHook: `X-SMSHook-Signature = md5(timestamp + appkey + secret)`. It has no nonce: timestamp + body digest stands in. */
export function verifySmsHook(
  headers: ReceivedCallback["headers"],
  body: Buffer,
  credentials: CallbackCredentials,
  nowMs: number,
): string {
  const expected = credentials.smshook;
  if (!expected)
    throw new CallbackRefusedError(
      "not_configured",
      "SMSHook callbacks are not configured (SMSHOOK_APP_KEY / SMSHOOK_APP_SECRET)",
    );
  const timestamp = header(headers, "x-smshook-timestamp");
  const appKey = header(headers, "x-smshook-appkey");
  const signature = header(headers, "x-smshook-signature");
  if (!timestamp || !appKey || !signature)
    throw new CallbackRefusedError("bad_signature", "X-SMSHook-Timestamp, -AppKey and -Signature are required");
  const computed = createHash("md5")
    .update(timestamp + appKey + expected.secret)
    .digest("hex");
  const keyOk = safeEqual(appKey, expected.appKey);
  const signatureOk = safeEqual(signature.toLowerCase(), computed);
  if (!keyOk || !signatureOk) throw new CallbackRefusedError("bad_signature", "signature does not match");
  assertFresh(timestamp, nowMs, credentials.maxSkewMs);
  return `smshook:${timestamp}:${createHash("sha256").update(body).digest("hex")}`;
}

function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given, "utf8");
  const b = Buffer.from(expected, "utf8");
  // timingSafeEqual needs equal lengths; comparing b with itself keeps the time independent of the result.
  return a.length === b.length ? timingSafeEqual(a, b) : !timingSafeEqual(b, b);
}

/** Unix seconds or milliseconds (13 digits or more); outside the window is a refusal, not an error. */
export function assertFresh(timestamp: string, nowMs: number, maxSkewMs: number): void {
  if (!/^\d{9,16}$/.test(timestamp)) throw new CallbackRefusedError("stale_timestamp", "timestamp is not a Unix time");
  const value = Number(timestamp);
  const ms = value >= 1e12 ? value : value * 1000;
  if (Math.abs(nowMs - ms) > maxSkewMs) {
    throw new CallbackRefusedError(
      "stale_timestamp",
      `timestamp is more than ${Math.round(maxSkewMs / 1000)} s from now`,
    );
  }
}

/**
 * `{"total": n, "rows": [...]}` (current platform). SMSHook posts one event object, or an array of them,
 * which become rows of the same shape: `sms_id` is its message id, `status` its message status.
 */
export function parseCallbackRows(text: string, source: CallbackSource): Record<string, unknown>[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new CallbackRefusedError("malformed", `body is not valid JSON: ${(error as Error).message}`);
  }
  const rows =
    isObject(body) && Array.isArray(body.rows)
      ? body.rows
      : source === "smshook"
        ? Array.isArray(body)
          ? body
          : [body]
        : undefined;
  if (rows === undefined) throw new CallbackRefusedError("malformed", 'body must be {"total": n, "rows": [...]}');
  const bad = rows.findIndex((row) => !isObject(row));
  if (bad !== -1) throw new CallbackRefusedError("malformed", `rows[${bad}] is not an object`);
  return source === "smshook"
    ? (rows as Record<string, unknown>[]).map(smsHookRow)
    : (rows as Record<string, unknown>[]);
}

function smsHookRow(event: Record<string, unknown>): Record<string, unknown> {
  if (isObject(event.status) || event.type === "uplink") return event;
  return {
    ...event,
    message_id: event.message_id ?? event.sms_id,
    to: event.to ?? event.phone,
    status: {
      message_status: event.status,
      error_code: event.error_code,
      error_detail: { message: event.error_message },
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface DrainOptions extends ApplyOptions {
  /** Statements per call at most, so one job cannot hold its worker forever. */
  maxRounds: number;
  /**
   * Statements run at once at most (default 1). Each takes different callback rows (SKIP LOCKED), so on a
   * 2-core database two of them use both cores where one statement uses one. Only a backlog keeps them
   * busy: a lane whose statement found less than `limit` ready ends, unless it is the last one left,
   * which then pauses (`gatherMs`) and looks again. Reports that come in no faster than one statement
   * applies them do not need a second core beside the receiver, which must answer within 3 s.
   */
  parallel?: number;
  /**
   * After a statement that found less than `limit` ready, the last lane left waits this long (default 0)
   * before it looks again, so what comes in meanwhile is applied in one bigger statement; the drain
   * ends when a look finds nothing.
   */
  gatherMs?: number;
  /** Called with each statement's report as it commits (metrics must not wait for a long drain to end). */
  onApplied?: (report: ApplyReport) => void;
}

export interface DrainReport extends ApplyReport {
  /** True when maxRounds ended the call with work still ready: the caller queues the next drain. */
  more: boolean;
  /** In how many ms the earliest waiting event comes due (null: none waits). */
  nextAttemptInMs: number | null;
}

/** 40P01: two appliers locked the same recipients in opposite orders; the loser's statement rolled back whole. */
function isDeadlock(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "40P01";
}

function addReport(total: ApplyReport, report: ApplyReport): void {
  total.picked += report.picked;
  total.rows += report.rows;
  total.applied += report.applied;
  total.changed += report.changed;
  total.ignored += report.ignored;
  total.unmatched += report.unmatched;
  total.waiting += report.waiting;
  total.optOuts += report.optOuts;
  for (const [status, n] of Object.entries(report.byStatus)) total.byStatus[status] = (total.byStatus[status] ?? 0) + n;
  for (const delay of report.delays) total.delays.push(delay);
}

/**
 * Applies every stored event that is ready, `limit` per statement, statement after statement until one
 * finds nothing ready (or maxRounds in all), in `parallel` lanes, and sums what happened.
 */
export async function applyDeliveryReports(db: Database, options: DrainOptions): Promise<DrainReport> {
  const total: DrainReport = { ...emptyApplyReport(), more: false, nextAttemptInMs: null };
  let rounds = 0;
  let deadlocks = 0;
  // Learned from the statements so far: how many rows to lock for `limit` events (see candidateRows).
  let eventsPerRow = options.eventsPerRow;
  let activeLanes = Math.max(1, options.parallel ?? 1);
  const lane = async (): Promise<void> => {
    try {
      await runLane();
    } finally {
      activeLanes--;
    }
  };
  const runLane = async (): Promise<void> => {
    for (;;) {
      if (rounds >= options.maxRounds) {
        total.more = true;
        return;
      }
      rounds++;
      let report: ApplyReport;
      try {
        report = await applyStoredEvents(db, { ...options, eventsPerRow });
      } catch (error) {
        // Rolled back, nothing applied: the rows are free again and the round is simply run again.
        if (isDeadlock(error) && ++deadlocks <= 3 * options.maxRounds) continue;
        throw error;
      }
      if (report.picked === 0) return;
      if (report.rows > 0) eventsPerRow = report.picked / report.rows;
      addReport(total, report);
      options.onApplied?.(report);
      if (report.picked < options.limit) {
        // The backlog is gone: the last lane left follows what comes in, after a pause to let it gather.
        if (activeLanes > 1) return;
        if (options.gatherMs) await sleep(options.gatherMs);
      }
    }
  };
  await Promise.all(Array.from({ length: activeLanes }, lane));
  if (!total.more) total.nextAttemptInMs = await nextDeliveryAttemptInMs(db);
  return total;
}

export interface SweepOptions {
  noReportAfterMs: number;
  nonceMaxAgeMs: number;
  rawRetentionMs: number;
}

/** The periodic part: recipients that never got a report become no_report; old nonces and applied rows go. */
export async function sweepDeliveryReports(
  db: Database,
  options: SweepOptions,
): Promise<{ noReport: number; nonces: number; events: number }> {
  await ensureWorkListStatistics(db);
  const noReport = await markNoReport(db, options.noReportAfterMs);
  const purged = await purgeDeliveryRows(db, options.nonceMaxAgeMs, options.rawRetentionMs);
  return { noReport, ...purged };
}
