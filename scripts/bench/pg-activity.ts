// What the workers' Postgres connections are doing during the send, sampled from pg_stat_activity: running,
// waiting on a lock (and on which statement), on I/O, idle in a transaction, or idle (waiting on the worker).
import type pg from "pg";

export interface ActivityReport {
  samples: number;
  /** Average number of worker connections in each state per sample, busiest first. */
  average: Record<string, number>;
}

export class PgActivitySampler {
  private timer: NodeJS.Timeout | undefined;
  private samples = 0;
  private readonly totals = new Map<string, number>();
  private busy = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly database: string,
    private readonly applicationName: string,
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.sample(), this.intervalMs);
  }

  stop(): ActivityReport {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const average = Object.fromEntries(
      [...this.totals.entries()]
        .map(([k, v]) => [k, Math.round((v / Math.max(1, this.samples)) * 10) / 10] as const)
        .filter(([, v]) => v >= 0.1)
        .sort((a, b) => b[1] - a[1]),
    );
    return { samples: this.samples, average };
  }

  private async sample(): Promise<void> {
    if (this.busy) return; // never more than one query of ours in flight
    this.busy = true;
    try {
      const { rows } = await this.pool.query<{
        state: string | null;
        wait_event_type: string | null;
        wait_event: string | null;
        query: string;
      }>(
        `SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
        [this.database, this.applicationName],
      );
      this.samples++;
      for (const r of rows) {
        const key = categorise(r);
        this.totals.set(key, (this.totals.get(key) ?? 0) + 1);
      }
    } catch {
      // a missed sample only lowers the count
    } finally {
      this.busy = false;
    }
  }
}

function categorise(r: {
  state: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
  query: string;
}): string {
  const statement = r.query.replace(/\s+/g, " ").trim().split(" ").slice(0, 3).join(" ").toLowerCase();
  if (r.state === "active") {
    if (!r.wait_event_type) return `running: ${statement}`;
    return `waiting ${r.wait_event_type}/${r.wait_event}: ${statement}`;
  }
  if (r.state === "idle in transaction") return `idle in transaction (worker busy, after: ${statement})`;
  return r.state ?? "unknown";
}
