import { TargetCounts } from "./target-counts.ts";

export type SendApi = "messages" | "legacy" | "custom";
export type SandboxApi = SendApi | "templates";

export const SEND_APIS: readonly SendApi[] = ["messages", "legacy", "custom"];
export const SANDBOX_APIS: readonly SandboxApi[] = [...SEND_APIS, "templates"];

export type OutcomeCounter =
  "errors" | "throttled" | "hung" | "lostResponses" | "unauthorized" | "badRequests" | "dedupHits" | "rejectedNumbers";

const OUTCOME_COUNTERS: readonly OutcomeCounter[] = [
  "errors",
  "throttled",
  "hung",
  "lostResponses",
  "unauthorized",
  "badRequests",
  "dedupHits",
  "rejectedNumbers",
];

export interface SandboxStats extends Record<OutcomeCounter, number> {
  requests: Record<SandboxApi, number>;
  /** Targets accepted for sending, per API. */
  accepted: Record<SendApi, number>;
  /** Distinct targets accepted over all APIs. */
  uniqueNumbers: number;
  /** Distinct targets accepted more than once over all APIs. */
  duplicates: number;
}

/** How one send request ended, as the provider saw it. */
export type RequestOutcome =
  | "sent" // every target accepted
  | "partial" // some targets accepted, some refused
  | "refused" // answered with an error after validation: nothing sent (the targets are in `refused`)
  | "replay" // legacy request_id seen before: the first answer replayed, nothing sent
  | "error" // HTTP 500 fault
  | "throttle" // HTTP 429 fault
  | "hang" // never answered
  | "lose-response" // sent and recorded, then the socket was destroyed
  | "unauthorized"
  | "bad-request"; // rejected before any fault or send (JSON, body size)

/** One send request, timestamped by the sandbox's own clock (ms since the epoch). */
export interface SandboxRequest {
  seq: number;
  api: SendApi;
  /** The tag of the listener it came in on (`listen(tag)`); undefined for the main port. */
  via?: string;
  receivedAt: number;
  /** When the answer was written or the socket destroyed; undefined while open (and forever for a hang). */
  answeredAt?: number;
  outcome?: RequestOutcome;
  /** When the client closed the connection before it got an answer (its own timeout, or it died). */
  abandonedAt?: number;
  status?: number;
  /** legacy `request_id`, or messages `custom_args.batch_id`: which batch it carried. */
  requestId?: string;
  batchId?: string;
  targets: string[];
  /**
   * When what it accepted goes out: its schedule_time (v1/messages, in ms) or the moment it arrived. Unset
   * when nothing was accepted. The sandbox records a scheduled send at once; this says when it is due.
   */
  sendsAt?: number;
  /** The request body without `to` (template, plan_name, custom_args, schedule_time, …). */
  fields?: Record<string, unknown>;
  /** The answer's body as sent (when it was answered), for exact comparisons in tests. */
  response?: string;
}

/** A target the provider refused, with the code it gave (partial success: the item's code). */
export interface Refusal {
  code: number;
  times: number;
}

/** Requests kept for inspection; older ones are dropped (and counted) past this. */
const REQUEST_LOG_LIMIT = 200_000;

function zeroCounts<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
}

// Each target's count per API, packed into one number: 17 bits per API (SEND_APIS order), 51 bits in all, so
// one lookup answers "seen before?" and one set records it (TargetCounts). Three Maps, one per API, cost
// three lookups per number in tables of millions: 6.2 s of the sandbox's CPU in a 1M benchmark
// (--cpu-prof), on the same 2 cores the workers and Postgres need.
const API_COUNT_BITS = 17;
const API_COUNT_MAX = 2 ** API_COUNT_BITS - 1;
const API_SHIFT: Readonly<Record<SendApi, number>> = Object.fromEntries(
  SEND_APIS.map((api, index) => [api, 2 ** (API_COUNT_BITS * index)]),
) as Record<SendApi, number>;

function countOf(packed: number, api: SendApi): number {
  return Math.floor(packed / API_SHIFT[api]) % (API_COUNT_MAX + 1);
}

function totalOf(packed: number): number {
  let total = 0;
  for (const api of SEND_APIS) total += countOf(packed, api);
  return total;
}

/**
 * What the fake provider accepted for sending. Packed per-API counts in typed arrays keep memory small at
 * ten million targets; unique/duplicate totals are maintained on write so stats stay O(1).
 */
export class SandboxLedger {
  private readonly received = new TargetCounts();
  private requests = zeroCounts(SANDBOX_APIS);
  private accepted = zeroCounts(SEND_APIS);
  private outcomes = zeroCounts(OUTCOME_COUNTERS);
  private uniqueNumbers = 0;
  private duplicates = 0;
  private readonly refusals: Record<SendApi, Map<string, Refusal>> = {
    messages: new Map(),
    legacy: new Map(),
    custom: new Map(),
  };
  private log: SandboxRequest[] = [];
  private droppedRequests = 0;
  private nextSeq = 1;

  /** Starts the log entry of one send request; the server fills in how it ended. */
  openRequest(api: SendApi, receivedAt: number, via: string | undefined): SandboxRequest {
    const entry: SandboxRequest = { seq: this.nextSeq++, api, receivedAt, targets: [] };
    if (via !== undefined) entry.via = via;
    this.log.push(entry);
    if (this.log.length > REQUEST_LOG_LIMIT) {
      const drop = this.log.length - REQUEST_LOG_LIMIT;
      this.log.splice(0, drop);
      this.droppedRequests += drop;
    }
    return entry;
  }

  /** Every logged send request (oldest first), optionally only one API's or one listener's. */
  requestLog(filter: { api?: SendApi; via?: string } = {}): SandboxRequest[] {
    return this.log.filter(
      (r) => (filter.api === undefined || r.api === filter.api) && (filter.via === undefined || r.via === filter.via),
    );
  }

  /** Requests received at or before `atMs` and not answered by then (hangs stay open). */
  openAt(atMs: number, filter: { api?: SendApi; via?: string } = {}): SandboxRequest[] {
    return this.requestLog(filter).filter(
      (r) => r.receivedAt <= atMs && (r.answeredAt === undefined || r.answeredAt > atMs),
    );
  }

  get droppedRequestCount(): number {
    return this.droppedRequests;
  }

  recordRefused(api: SendApi, target: string, code: number): void {
    const perApi = this.refusals[api];
    const known = perApi.get(target);
    if (known) {
      known.code = code;
      known.times += 1;
    } else perApi.set(target, { code, times: 1 });
  }

  /** target → the provider's refusal (last code given) for one API. */
  refused(api: SendApi): ReadonlyMap<string, Refusal> {
    return this.refusals[api];
  }

  recordAccepted(api: SendApi, target: string): void {
    const packed = this.received.get(target) ?? 0;
    const before = packed === 0 ? 0 : totalOf(packed);
    // a count at its ceiling stays there (131,071 times one number in one sandbox: a test gone wrong)
    if (countOf(packed, api) < API_COUNT_MAX) this.received.set(target, packed + API_SHIFT[api]);
    this.accepted[api] += 1;
    if (before === 0) this.uniqueNumbers += 1;
    else if (before === 1) this.duplicates += 1;
  }

  /** How often `target` was accepted, for one API or summed over all. */
  timesReceived(target: string, api?: SendApi): number {
    const packed = this.received.get(target) ?? 0;
    return api ? countOf(packed, api) : totalOf(packed);
  }

  countRequest(api: SandboxApi): void {
    this.requests[api] += 1;
  }

  count(outcome: OutcomeCounter, amount = 1): void {
    this.outcomes[outcome] += amount;
  }

  /** target → times received; fine for tests, use sentJsonChunks for big ledgers. */
  sent(api?: SendApi): Record<string, number> {
    return Object.fromEntries(this.entries(api));
  }

  /** The same object as `sent()`, as JSON text in pieces, so a huge ledger never becomes one object. */
  *sentJsonChunks(api?: SendApi, entriesPerChunk = 10_000): Generator<string> {
    let parts: string[] = [];
    let first = true;
    yield "{";
    for (const [target, times] of this.entries(api)) {
      parts.push(`${first ? "" : ","}${JSON.stringify(target)}:${times}`);
      first = false;
      if (parts.length >= entriesPerChunk) {
        yield parts.join("");
        parts = [];
      }
    }
    if (parts.length > 0) yield parts.join("");
    yield "}";
  }

  stats(): SandboxStats {
    return {
      requests: { ...this.requests },
      accepted: { ...this.accepted },
      uniqueNumbers: this.uniqueNumbers,
      duplicates: this.duplicates,
      ...this.outcomes,
    };
  }

  reset(): void {
    this.received.clear();
    this.requests = zeroCounts(SANDBOX_APIS);
    this.accepted = zeroCounts(SEND_APIS);
    this.outcomes = zeroCounts(OUTCOME_COUNTERS);
    this.uniqueNumbers = 0;
    this.duplicates = 0;
    for (const name of SEND_APIS) this.refusals[name].clear();
    this.log = [];
    this.droppedRequests = 0;
  }

  private *entries(api?: SendApi): Generator<[string, number]> {
    for (const [target, packed] of this.received) {
      const times = api ? countOf(packed, api) : totalOf(packed);
      if (times > 0) yield [target, times];
    }
  }
}
