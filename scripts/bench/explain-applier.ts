// Profiles the delivery applier's statements on the database `npm run bench:delivery` leaves behind:
// every stored event is set back to pending and every recipient to `accepted`, then each batch size is
// timed (statement only, rolled back, so every size sees the same rows) and one run is EXPLAIN ANALYZEd.
//   npx tsx scripts/bench/explain-applier.ts [--sizes 500,2000,5000,10000] [--explain 5000] [--repeat 3]
import os from "node:os";
import pg from "pg";
import type { Database } from "../../src/store/database.ts";
import { applyStoredEvents } from "../../src/store/delivery-repository.ts";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args[i + 1]!;
};
const sizes = flag("sizes", "500,2000,5000,10000").split(",").map(Number);
const explainSize = Number(flag("explain", "5000"));
const repeat = Number(flag("repeat", "3"));
const url = process.env.BENCH_DELIVERY_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/smsblast_bench_delivery";

/** A pool whose transactions always roll back; with `explain`, the applier's big statement is EXPLAIN ANALYZEd. */
function rollbackDb(pool: pg.Pool, explain: { on: boolean; plans: string[] }): Database {
  const fake = {
    connect: async () => {
      const client = await pool.connect();
      const query = client.query.bind(client) as (text: string, values?: unknown[]) => Promise<pg.QueryResult>;
      (client as unknown as { query: typeof query }).query = async (text: string, values?: unknown[]) => {
        if (text === "COMMIT") return query("ROLLBACK");
        if (explain.on && /^\s*WITH received AS/.test(text)) {
          const r = await query(`EXPLAIN (ANALYZE, BUFFERS, VERBOSE false) ${text}`, values);
          explain.plans.push(r.rows.map((row: Record<string, string>) => row["QUERY PLAN"]).join("\n"));
          return { ...r, rows: [], rowCount: 0 };
        }
        return query(text, values);
      };
      return client;
    },
    query: pool.query.bind(pool),
  };
  return { pool: fake } as unknown as Database;
}

async function main(): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  await pool.query(
    `UPDATE recipients SET state = 'accepted', delivered_at = NULL, reported_at = NULL, cost = NULL, currency = NULL WHERE state <> 'accepted'`,
  );
  await pool.query(
    `UPDATE delivery_events SET outcome = CASE WHEN jsonb_typeof(row) = 'array' THEN 'received' ELSE 'pending' END, applied_at = NULL, attempts = 0, next_attempt_at = received_at WHERE outcome NOT IN ('pending', 'received')`,
  );
  await pool.query(`VACUUM ANALYZE recipients`);
  await pool.query(`VACUUM ANALYZE delivery_events`);
  const { rows } = await pool.query<{ n: number }>(
    `SELECT sum(row_count)::int AS n FROM delivery_events WHERE outcome IN ('pending', 'received')`,
  );
  console.log(
    `${rows[0]!.n} pending events; load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  const explain = { on: false, plans: [] as string[] };
  const db = rollbackDb(pool, explain);
  for (const limit of sizes) {
    const times: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t0 = performance.now();
      const report = await applyStoredEvents(db, { limit, retryDelayMs: 5_000, giveUpAfterMs: 86_400_000 });
      times.push(performance.now() - t0);
      if (report.picked !== limit) console.log(`  (picked ${report.picked}, changed ${report.changed})`);
    }
    const best = Math.min(...times);
    // The ceiling: the bare primary-key UPDATE of as many recipients (what applying must write at least),
    // timed the same way at the same moment, so the ratio holds whatever the load.
    const bare: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const t0 = performance.now();
        await client.query(
          `UPDATE recipients r SET state = 'delivered', delivered_at = now(), reported_at = now(), cost = 0.01, currency = 'USD', updated_at = now()
           FROM (SELECT campaign_id, batch_sequence, phone FROM recipients ORDER BY campaign_id, batch_sequence, phone LIMIT $1) k
           WHERE r.campaign_id = k.campaign_id AND r.batch_sequence = k.batch_sequence AND r.phone = k.phone`,
          [limit],
        );
        bare.push(performance.now() - t0);
      } finally {
        await client.query("ROLLBACK");
        client.release();
      }
    }
    const bareBest = Math.min(...bare);
    console.log(
      `batch ${limit}: best ${best.toFixed(0)} ms of ${times.map((t) => t.toFixed(0)).join("/")} → ${Math.round((limit / best) * 1000)} events/s; ` +
        `bare UPDATE of ${limit} recipients ${bareBest.toFixed(0)} ms → ${Math.round((limit / bareBest) * 1000)}/s (statement ${(best / bareBest).toFixed(1)}× it); load ${os.loadavg()[0]!.toFixed(2)}`,
    );
  }
  explain.on = true;
  await applyStoredEvents(db, { limit: explainSize, retryDelayMs: 5_000, giveUpAfterMs: 86_400_000 });
  console.log(`\nEXPLAIN ANALYZE, batch ${explainSize}:\n${explain.plans.join("\n")}`);
  await pool.end();
}

void main();
