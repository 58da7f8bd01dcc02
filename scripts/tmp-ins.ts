import pg from "pg";
import { deliveryEventKeyColumns } from "../src/model/delivery-keys.ts";
const pool = new pg.Pool({ connectionString: "postgresql://postgres@127.0.0.1:5432/smsblast_bench_delivery", max: 10 });
const {
  rows: [b],
} = await pool.query(`SELECT id, campaign_id FROM batches LIMIT 1`);
const rows = Array.from({ length: 100 }, (_, i) => ({
  message_id: "bench-1",
  to: `6590000${String(i).padStart(3, "0")}`,
  server: "sms",
  channel: "sms",
  itime: 1700000000,
  custom_args: { campaign_id: b.campaign_id, batch_id: b.id },
  status: {
    message_status: "delivered",
    status_data: { msg_time: 1700000000, message_id: "bench-1" },
    billing: { cost: 0.01, currency: "USD" },
    error_code: 0,
  },
}));
const json = JSON.stringify(rows);
const keys = deliveryEventKeyColumns(rows);
const variants: Record<string, () => Promise<unknown>> = {
  "one row, json only": () =>
    pool.query(
      `INSERT INTO delivery_events (source, row, row_count, outcome) VALUES ('x', $1::jsonb, 100, 'received')`,
      [json],
    ),
  "one row + keys": () =>
    pool.query(
      `INSERT INTO delivery_events (source, row, row_count, outcome, events) SELECT 'x', $1::jsonb, 100, 'received', ARRAY(SELECT ROW(k.b, k.ct, k.c, k.p, k.s, k.t, k.ec, k.em, k.co, k.cu, k.m)::delivery_event_key FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::numeric[], $11::text[], $12::text[]) WITH ORDINALITY AS k(b, ct, c, p, s, t, ec, em, co, cu, m, o) ORDER BY k.o)`,
      [json, ...keys],
    ),
  "100 rows (before)": () =>
    pool.query(
      `INSERT INTO delivery_events (source, row, outcome) SELECT 'x', r, 'applied' FROM jsonb_array_elements($1::jsonb) r`,
      [json],
    ),
  "empty insert": () => pool.query(`INSERT INTO delivery_events (source, row, outcome) VALUES ('x', '{}', 'applied')`),
};
for (const [name, fn] of Object.entries(variants)) {
  for (const conc of [1, 8]) {
    const times: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: conc }, async () => {
        for (let i = 0; i < 320 / conc; i++) {
          const t = performance.now();
          await fn();
          times.push(performance.now() - t);
        }
      }),
    );
    times.sort((a, b) => a - b);
    console.log(
      `${name} conc ${conc}: ${(320 / ((performance.now() - t0) / 1000)).toFixed(0)}/s p50 ${times[160]!.toFixed(2)} p99 ${times[316]!.toFixed(2)}`,
    );
  }
}
await pool.query(`DELETE FROM delivery_events WHERE source = 'x'`);
await pool.end();
