import pg from "pg";
import { deliveryEventKeyColumns } from "../src/model/delivery-keys.ts";
const pool = new pg.Pool({ connectionString: "postgresql://postgres@127.0.0.1:5432/smsblast_bench_delivery", max: 10 });
await pool.query(`DROP TABLE IF EXISTS tmp_a, tmp_b, tmp_c, tmp_d`);
await pool.query(`CREATE TABLE tmp_a (id bigserial primary key, row jsonb, raw json, n int, k text[], t bigint[])`);
await pool.query(`CREATE TABLE tmp_b (id bigserial primary key, row jsonb, raw json, n int, k text[], t bigint[])`);
await pool.query(
  `ALTER TABLE tmp_b ALTER COLUMN row SET COMPRESSION lz4, ALTER COLUMN raw SET COMPRESSION lz4, ALTER COLUMN k SET COMPRESSION lz4`,
);
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
const flat = keys.flat().map((v) => v ?? "");
const variants: Record<string, () => Promise<unknown>> = {
  "jsonb pglz": () => pool.query(`INSERT INTO tmp_a (row, n) VALUES ($1::jsonb, 100)`, [json]),
  "jsonb lz4": () => pool.query(`INSERT INTO tmp_b (row, n) VALUES ($1::jsonb, 100)`, [json]),
  "json pglz": () => pool.query(`INSERT INTO tmp_a (raw, n) VALUES ($1::json, 100)`, [json]),
  "json lz4": () => pool.query(`INSERT INTO tmp_b (raw, n) VALUES ($1::json, 100)`, [json]),
  "json lz4 + flat text[] keys": () =>
    pool.query(`INSERT INTO tmp_b (raw, n, k) VALUES ($1::json, 100, $2::text[])`, [json, flat]),
};
for (let round = 0; round < 2; round++)
  for (const [name, fn] of Object.entries(variants)) {
    for (const conc of [8]) {
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
console.log(
  (
    await pool.query(
      `SELECT pg_column_size(row) r, pg_column_size(raw) j, pg_column_size(k) k FROM tmp_b WHERE k IS NOT NULL LIMIT 1`,
    )
  ).rows,
);
console.log((await pool.query(`SELECT pg_column_size(row) r FROM tmp_a WHERE row IS NOT NULL LIMIT 1`)).rows);
await pool.query(`DROP TABLE tmp_a, tmp_b`);
await pool.end();
