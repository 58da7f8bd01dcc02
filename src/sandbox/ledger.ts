export type SendApi = "messages" | "legacy" | "custom";
export type SandboxApi = SendApi | "templates";

export const SEND_APIS: readonly SendApi[] = ["messages", "legacy", "custom"];
export const SANDBOX_APIS: readonly SandboxApi[] = [...SEND_APIS, "templates"];

export type OutcomeCounter =
  | "errors"
  | "throttled"
  | "hung"
  | "lostResponses"
  | "unauthorized"
  | "badRequests"
  | "dedupHits"
  | "rejectedNumbers";

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

function zeroCounts<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
}

/**
 * What the fake provider accepted for sending. One Map per API keeps memory flat at
 * a million targets; unique/duplicate totals are maintained on write so stats stay O(1).
 */
export class SandboxLedger {
  private readonly received: Record<SendApi, Map<string, number>> = {
    messages: new Map(),
    legacy: new Map(),
    custom: new Map(),
  };
  private requests = zeroCounts(SANDBOX_APIS);
  private accepted = zeroCounts(SEND_APIS);
  private outcomes = zeroCounts(OUTCOME_COUNTERS);
  private uniqueNumbers = 0;
  private duplicates = 0;

  recordAccepted(api: SendApi, target: string): void {
    const before = this.timesReceived(target);
    const perApi = this.received[api];
    perApi.set(target, (perApi.get(target) ?? 0) + 1);
    this.accepted[api] += 1;
    if (before === 0) this.uniqueNumbers += 1;
    else if (before === 1) this.duplicates += 1;
  }

  /** How often `target` was accepted, for one API or summed over all. */
  timesReceived(target: string, api?: SendApi): number {
    if (api) return this.received[api].get(target) ?? 0;
    let total = 0;
    for (const name of SEND_APIS) total += this.received[name].get(target) ?? 0;
    return total;
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
    for (const name of SEND_APIS) this.received[name].clear();
    this.requests = zeroCounts(SANDBOX_APIS);
    this.accepted = zeroCounts(SEND_APIS);
    this.outcomes = zeroCounts(OUTCOME_COUNTERS);
    this.uniqueNumbers = 0;
    this.duplicates = 0;
  }

  private *entries(api?: SendApi): Generator<[string, number]> {
    if (api) {
      yield* this.received[api];
      return;
    }
    const maps = SEND_APIS.map((name) => this.received[name]);
    for (const [index, map] of maps.entries()) {
      const earlier = maps.slice(0, index);
      const later = maps.slice(index + 1);
      for (const [target, times] of map) {
        // A target seen by an earlier API was already emitted with its full total.
        if (earlier.some((other) => other.has(target))) continue;
        let total = times;
        for (const other of later) total += other.get(target) ?? 0;
        yield [target, total];
      }
    }
  }
}
