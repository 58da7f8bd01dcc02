/**
 * Delivery callbacks like EngageLab's (docs/engagelab-apis.md#delivery-callbacks): for every accepted
 * number the sandbox decides an outcome (delivered, undelivered, never reported) and POSTs signed
 * `{"total", "rows"}` batches to the callback URL — `sent`, then `delivered` / `delivered_failed` — with
 * knobs for delay, duplicates and out-of-order events. A callback that is not answered 2xx is re-sent with
 * back-off and a fresh timestamp (same nonce), up to a bound. Its ledger counts what was sent and acknowledged.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";

export type CallbackFormat = "engagelab" | "smshook";
export type ReportDecision = "delivered" | "undelivered" | "none";

export interface CallbackSettings {
  url: string;
  /** EngageLab: callback username + secret (X-CALLBACK-ID HMAC). SMSHook: app key + secret (md5). */
  username: string;
  secret: string;
  format: CallbackFormat;
  /** Each event waits at least this long after the send… */
  delayMs: number;
  /** …plus a uniform random share of this. */
  jitterMs: number;
  /** Of all accepted numbers: the fraction delivered, and the fraction never reported; the rest are undelivered. */
  deliveredRate: number;
  neverReportedRate: number;
  /** Fraction of numbers whose final event is sent twice (in two callbacks). */
  duplicateRate: number;
  /** Fraction of numbers whose final event comes before their `sent` event. */
  outOfOrderRate: number;
  /** Rows per callback. */
  batchSize: number;
  /** First re-send after this long, doubling up to retryMaxMs, at most maxAttempts posts per callback. */
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  /** Callbacks in flight at once. */
  concurrency: number;
}

export const DEFAULT_CALLBACK_SETTINGS: Omit<CallbackSettings, "url"> = {
  username: "sandbox-callback",
  secret: "sandbox-callback-secret",
  format: "engagelab",
  delayMs: 50,
  jitterMs: 200,
  deliveredRate: 0.9,
  neverReportedRate: 0.02,
  duplicateRate: 0,
  outOfOrderRate: 0,
  batchSize: 100,
  retryBaseMs: 200,
  retryMaxMs: 5_000,
  maxAttempts: 20,
  concurrency: 4,
};

/** What an accepted send tells the reporter. */
export interface AcceptedMessage {
  target: string;
  messageId: string;
  customArgs?: Record<string, unknown>;
}

interface PendingEvent {
  dueMs: number;
  row: Record<string, unknown>;
  target: string;
}

interface Callback {
  nonce: string;
  rows: PendingEvent[];
  attempts: number;
  nextMs: number;
}

export interface CallbackStats {
  decided: Record<ReportDecision, number>;
  eventsQueued: number;
  eventsSent: number;
  eventsAcknowledged: number;
  callbacksPosted: number;
  callbacksAcknowledged: number;
  callbacksRefused: number;
  callbacksAbandoned: number;
  pending: number;
}

/** Undelivered reports use these provider codes (sandbox values; the real codes are carrier-specific). */
const UNDELIVERED = { code: 4001, message: "handset unreachable" };

export class CallbackReporter {
  private settings: CallbackSettings | undefined;
  private queue: PendingEvent[] = [];
  private retries: Callback[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly decisions = new Map<string, ReportDecision>();
  private readonly counts = {
    eventsQueued: 0,
    eventsSent: 0,
    eventsAcknowledged: 0,
    callbacksPosted: 0,
    callbacksAcknowledged: 0,
    callbacksRefused: 0,
    callbacksAbandoned: 0,
  };
  private readonly controller = new AbortController();

  constructor(
    private readonly random: () => number,
    private readonly nowMs: () => number,
    private readonly log: (msg: string) => void,
  ) {}

  configure(settings: CallbackSettings | undefined): void {
    this.settings = settings;
    if (settings && !this.timer) {
      this.timer = setInterval(() => this.tick(), 20);
      this.timer.unref();
    }
  }

  /** Decides and queues the reports of one accepted number. */
  /** Whether callbacks are configured: without them an accepted message needs no id of its own. */
  get enabled(): boolean {
    return this.settings !== undefined;
  }

  accepted(message: AcceptedMessage): void {
    const s = this.settings;
    if (!s) return;
    const r = this.random();
    const decision: ReportDecision =
      r < s.neverReportedRate ? "none" : r < s.neverReportedRate + s.deliveredRate ? "delivered" : "undelivered";
    this.decisions.set(message.target, decision);
    if (decision === "none") return;
    const now = this.nowMs();
    const sentAt = now + s.delayMs + this.random() * s.jitterMs;
    let finalAt = sentAt + this.random() * s.jitterMs + 1;
    // Out of order: the final event is due before the `sent` one.
    if (this.random() < s.outOfOrderRate) finalAt = now + s.delayMs * 0.5 * this.random();
    this.enqueue(sentAt, this.row(message, "sent"), message.target);
    const finalStatus = decision === "delivered" ? "delivered" : "delivered_failed";
    this.enqueue(finalAt, this.row(message, finalStatus), message.target);
    if (this.random() < s.duplicateRate)
      this.enqueue(finalAt + s.delayMs + this.random() * s.jitterMs, this.row(message, finalStatus), message.target);
  }

  /** A recipient's reply (uplink), e.g. "STOP". */
  reply(from: string, content: string): void {
    if (!this.settings) throw new RangeError("no callback URL configured");
    this.enqueue(this.nowMs(), { type: "uplink", from, content, itime: Math.floor(this.nowMs() / 1000) }, from);
  }

  decisionOf(target: string): ReportDecision | undefined {
    return this.decisions.get(target);
  }

  allDecisions(): ReadonlyMap<string, ReportDecision> {
    return this.decisions;
  }

  stats(): CallbackStats {
    const decided: Record<ReportDecision, number> = { delivered: 0, undelivered: 0, none: 0 };
    for (const d of this.decisions.values()) decided[d] += 1;
    return {
      decided,
      ...this.counts,
      pending: this.queue.length + this.retries.reduce((n, c) => n + c.rows.length, 0) + this.inFlight,
    };
  }

  /** Nothing queued, nothing waiting for a re-send, nothing in flight. */
  idle(): boolean {
    return this.queue.length === 0 && this.retries.length === 0 && this.inFlight === 0;
  }

  reset(): void {
    this.queue = [];
    this.retries = [];
    this.decisions.clear();
    for (const key of Object.keys(this.counts) as (keyof typeof this.counts)[]) this.counts[key] = 0;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.controller.abort();
  }

  private enqueue(dueMs: number, row: Record<string, unknown>, target: string): void {
    this.queue.push({ dueMs, row, target });
    this.counts.eventsQueued += 1;
  }

  private row(message: AcceptedMessage, status: string): Record<string, unknown> {
    const seconds = Math.floor(this.nowMs() / 1000);
    const failed = status === "delivered_failed";
    return {
      message_id: message.messageId,
      // EngageLab echoes numbers without the "+": the receiver normalises to E.164.
      to: message.target.replace(/^\+/, ""),
      server: "sms",
      channel: "sms",
      itime: seconds,
      ...(message.customArgs ? { custom_args: message.customArgs } : {}),
      status: {
        message_status: status,
        status_data: { msg_time: seconds, message_id: message.messageId },
        billing: { cost: 0.0123, currency: "USD" },
        error_code: failed ? UNDELIVERED.code : 0,
        error_detail: failed ? { message: UNDELIVERED.message } : undefined,
      },
    };
  }

  private tick(): void {
    const s = this.settings;
    if (!s) return;
    const now = this.nowMs();
    while (this.inFlight < s.concurrency) {
      const retryIndex = this.retries.findIndex((c) => c.nextMs <= Date.now());
      if (retryIndex !== -1) {
        const [callback] = this.retries.splice(retryIndex, 1);
        void this.post(callback!);
        continue;
      }
      const due = this.takeDue(now, s.batchSize);
      if (due.length === 0) break;
      void this.post({ nonce: randomBytes(12).toString("hex"), rows: due, attempts: 0, nextMs: 0 });
    }
  }

  private takeDue(now: number, max: number): PendingEvent[] {
    const due: PendingEvent[] = [];
    const rest: PendingEvent[] = [];
    for (const event of this.queue) (due.length < max && event.dueMs <= now ? due : rest).push(event);
    if (due.length > 0) this.queue = rest;
    return due;
  }

  private async post(callback: Callback): Promise<void> {
    const s = this.settings!;
    this.inFlight += 1;
    callback.attempts += 1;
    this.counts.callbacksPosted += 1;
    this.counts.eventsSent += callback.rows.length;
    let ok: boolean;
    try {
      const body = JSON.stringify(
        s.format === "engagelab"
          ? { total: callback.rows.length, rows: callback.rows.map((e) => e.row) }
          : callback.rows.map((e) => smsHookEvent(e.row)),
      );
      const response = await fetch(s.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...this.signature(s, callback.nonce) },
        body,
        signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(3_000)]),
      });
      await response.arrayBuffer();
      ok = response.status === 200 || response.status === 204;
      if (!ok) this.counts.callbacksRefused += 1;
    } catch {
      ok = false;
    } finally {
      this.inFlight -= 1;
    }
    if (ok) {
      this.counts.callbacksAcknowledged += 1;
      this.counts.eventsAcknowledged += callback.rows.length;
      return;
    }
    if (this.controller.signal.aborted) return;
    if (callback.attempts >= s.maxAttempts) {
      this.counts.callbacksAbandoned += 1;
      this.log(`sandbox: callback of ${callback.rows.length} rows abandoned after ${callback.attempts} attempts`);
      return;
    }
    // Back-off runs on the real clock (the test clock may jump); the timestamp of the re-send is fresh.
    callback.nextMs = Date.now() + Math.min(s.retryMaxMs, s.retryBaseMs * 2 ** (callback.attempts - 1));
    this.retries.push(callback);
  }

  private signature(s: CallbackSettings, nonce: string): Record<string, string> {
    const timestamp = String(Math.floor(this.nowMs() / 1000));
    if (s.format === "smshook") {
      return {
        "x-smshook-timestamp": timestamp,
        "x-smshook-appkey": s.username,
        "x-smshook-signature": createHash("md5")
          .update(timestamp + s.username + s.secret)
          .digest("hex"),
      };
    }
    const signature = createHmac("sha256", s.secret)
      .update(timestamp + nonce + s.username)
      .digest("hex");
    return { "x-callback-id": `timestamp=${timestamp};nonce=${nonce};username=${s.username};signature=${signature}` };
  }
}

/** The legacy SMSHook event shape the sandbox sends (one object per event, custom_args echoed). */
function smsHookEvent(row: Record<string, unknown>): Record<string, unknown> {
  if (row.type === "uplink") return row;
  const status = row.status as Record<string, unknown>;
  return {
    sms_id: row.message_id,
    to: row.to,
    custom_args: row.custom_args,
    status: status.message_status,
    error_code: status.error_code,
    error_message: (status.error_detail as { message?: string } | undefined)?.message,
    itime: row.itime,
  };
}
