// `npm run bench:purge -- --recipients 10000000`: how long `smsblast purge` takes on a big recipients table,
// and what it does to the table's size (before, after the deletes, after VACUUM, after the next campaign of
// the same size reuses the space); with `forget` on the full table and, for the README's partitioning
// advice, what dropping one campaign's partition would cost instead. A script, not a test: it reports.
import { mkdir, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import pg from "pg";
import { purgeFinishedCampaigns, vacuumPurgedTables } from "../src/campaigns/retention.ts";
import { getCampaignStatus } from "../src/campaigns/campaign-status.ts";
import { PhoneHasher } from "../src/model/phone-hash.ts";
import { forgetNumber } from "../src/recipients/forget-number.ts";
import { openDatabase, type Database } from "../src/store/database.ts";
import { recreateDatabase } from "./bench/db.ts";

const USAGE = `usage: npm run bench:purge -- [options]
  --recipients N     recipients of the old, finished campaigns (k/M suffixes)   default 1M
  --campaigns N      how many old campaigns share them                            default 10
  --live N           recipients of one running campaign that must stay            default 100k
  --chunk-rows N     rows per delete statement (PURGE_CHUNK_ROWS)                 default 20000
  --no-partition     skip the partition comparison (DROP of one campaign's partition)
  --keep             keep the database afterwards
Uses the database smsblast_bench_purge (dropped and re-created; env BENCH_PURGE_DATABASE_URL).
Results: bench-results/bench-purge-<timestamp>.json`;

interface Options {
  recipients: number;
  campaigns: number;
  live: number;
  chunkRows: number;
  partition: boolean;
  keep: boolean;
  databaseUrl: string;
}

function parseCount(name: string, text: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text?.trim() ?? "");
  if (!m) throw new Error(`${name} must be a number such as 100000, 100k or 10M, got "${text}"`);
  const factor = m[2]?.toLowerCase() === "k" ? 1_000 : m[2]?.toLowerCase() === "m" ? 1_000_000 : 1;
  return Math.round(Number(m[1]) * factor);
}

function parseOptions(argv: string[]): Options | "help" {
  const o: Options = {
    recipients: 1_000_000,
    campaigns: 10,
    live: 100_000,
    chunkRows: 20_000,
    partition: true,
    keep: false,
    databaseUrl: process.env.BENCH_PURGE_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/smsblast_bench_purge",
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => argv[++i];
    if (arg === "--help" || arg === "-h") return "help";
    else if (arg === "--recipients") o.recipients = parseCount(arg, value());
    else if (arg === "--campaigns") o.campaigns = parseCount(arg, value());
    else if (arg === "--live") o.live = parseCount(arg, value());
    else if (arg === "--chunk-rows") o.chunkRows = parseCount(arg, value());
    else if (arg === "--no-partition") o.partition = false;
    else if (arg === "--keep") o.keep = true;
    else throw new Error(`unknown option ${arg}\n${USAGE}`);
  }
  if (o.campaigns < 1 || o.recipients < o.campaigns) throw new Error("--recipients must be at least --campaigns");
  if (o.recipients / o.campaigns > 9_000_000) throw new Error("at most 9M recipients per campaign (distinct numbers)");
  return o;
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

interface Sizes {
  recipientsHeap: number;
  recipientsIndexes: number;
  recipientsTotal: number;
  rejectsTotal: number;
  recipientRows: number;
}

async function sizes(pool: pg.Pool): Promise<Sizes> {
  const { rows } = await pool.query<{ heap: string; idx: string; total: string; rejects: string; n: string }>(
    `SELECT pg_relation_size('recipients') AS heap, pg_indexes_size('recipients') AS idx,
            pg_total_relation_size('recipients') AS total, pg_total_relation_size('rejects') AS rejects,
            (SELECT count(*) FROM recipients) AS n`,
  );
  const r = rows[0]!;
  return {
    recipientsHeap: Number(r.heap),
    recipientsIndexes: Number(r.idx),
    recipientsTotal: Number(r.total),
    rejectsTotal: Number(r.rejects),
    recipientRows: Number(r.n),
  };
}

/**
 * One campaign of `n` recipients straight in SQL (generate_series): batches of 1000, states as a real
 * campaign ends (delivered, 5 % undelivered, 2 % failed), provider ids and report times, and 1 % rejects.
 */
async function fillCampaign(
  pool: pg.Pool,
  n: number,
  options: {
    status: "completed" | "running";
    finishedDaysAgo?: number;
    table?: string;
    /** Runs once the campaign row exists, before its recipients go in (a partition for its id). */
    beforeRecipients?: (campaignId: string) => Promise<void>;
  },
): Promise<string> {
  const table = options.table ?? "recipients";
  const batches = Math.ceil(n / 1000);
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO campaigns (name, template_id, provider, status, source, total_rows, recipient_count, rejected_count,
       batch_count, accepted_count, failed_count, created_at, started_at, finished_at)
     VALUES ('bench ' || $1::int, '1', 'messages', $2::text::"CampaignStatus", 'bench', $1::int + $1::int / 100, $1::int,
       $1::int / 100, $3::int, $1::int - $1::int / 50, $1::int / 50, now() - make_interval(days => $4::int + 1),
       now() - make_interval(days => $4::int + 1), CASE WHEN $2::text = 'completed' THEN now() - make_interval(days => $4::int) END)
     RETURNING id`,
    [n, options.status, batches, options.finishedDaysAgo ?? 0],
  );
  const id = rows[0]!.id;
  await pool.query(
    `INSERT INTO batches (campaign_id, sequence, size, idempotency_key, state, attempts, message_id, sent_at)
     SELECT $1::uuid, s, least(1000, $2 - s * 1000), $1::uuid::text || '-' || s, $3::"BatchState", 1, 'plan-' || s, now()
     FROM generate_series(0, $4 - 1) s`,
    [id, n, options.status === "completed" ? "sent" : "queued", batches],
  );
  const done = options.status === "completed";
  await options.beforeRecipients?.(id);
  await pool.query(
    `INSERT INTO ${table} (campaign_id, batch_sequence, phone, row_number, state, message_id, failure_code, failure_message,
       delivered_at, reported_at, delivery_error_code, updated_at)
     SELECT $1, (g - 1) / 1000, '+659' || lpad(g::text, 7, '0'), g + 1,
       (CASE WHEN NOT $3 THEN 'pending' WHEN g % 50 = 0 THEN 'failed' WHEN g % 20 = 1 THEN 'undelivered' ELSE 'delivered' END)::"RecipientState",
       CASE WHEN $3 AND g % 50 <> 0 THEN 'msg-' || g END,
       CASE WHEN $3 AND g % 50 = 0 THEN 3004 END, CASE WHEN $3 AND g % 50 = 0 THEN 'frequency limit' END,
       CASE WHEN $3 AND g % 50 <> 0 AND g % 20 <> 1 THEN now() END, CASE WHEN $3 AND g % 50 <> 0 THEN now() END,
       CASE WHEN $3 AND g % 50 <> 0 AND g % 20 = 1 THEN '4001' END, now()
     FROM generate_series(1, $2) g`,
    [id, n, done],
  );
  if (table === "recipients")
    await pool.query(
      `INSERT INTO rejects (campaign_id, row_number, raw_value, reason)
       SELECT $1, $2 + g + 1, '12' || g, 'phone number has too few or too many digits' FROM generate_series(1, $2 / 100) g`,
      [id, n],
    );
  return id;
}

/** A redrawn progress line on a terminal only (a log file gets the figures, not every chunk). */
function progressLine(text: string | undefined): void {
  if (!process.stderr.isTTY) return;
  process.stderr.write(text === undefined ? "\n" : `\r${text}`);
}

async function walPosition(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`);
  return rows[0]!.lsn;
}

async function walSince(pool: pg.Pool, lsn: string): Promise<number> {
  const { rows } = await pool.query<{ bytes: string }>(
    `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn) AS bytes`,
    [lsn],
  );
  return Number(rows[0]!.bytes);
}

async function medianMs(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return percentile(times, 50);
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options === "help") {
    console.log(USAGE);
    return;
  }
  const figures: Record<string, unknown> = { options: { ...options, databaseUrl: undefined } };
  const note = (key: string, value: unknown, text: string) => {
    figures[key] = { value, load: load() };
    console.log(`${text.padEnd(72)} load ${load()}`);
  };
  console.log(
    `bench:purge: ${options.recipients} recipients in ${options.campaigns} finished campaigns, ${options.live} in a running one`,
  );
  await recreateDatabase(options.databaseUrl);
  const hasher = new PhoneHasher("bench-purge-secret-0123456789abcdef0123");
  const db: Database = openDatabase(options.databaseUrl, { phoneHasher: hasher, maxConnections: 4 });
  try {
    const perCampaign = Math.floor(options.recipients / options.campaigns);
    let started = performance.now();
    for (let i = 0; i < options.campaigns; i++) {
      const t = performance.now();
      await fillCampaign(db.pool, perCampaign, { status: "completed", finishedDaysAgo: 100 + i });
      progressLine(`  filled ${i + 1}/${options.campaigns} campaigns (${seconds(performance.now() - t)} last)`);
    }
    progressLine(undefined);
    const fillMs = performance.now() - started;
    const liveId = await fillCampaign(db.pool, options.live, { status: "running" });
    await db.pool.query(`ANALYZE`);
    note(
      "fillMs",
      Math.round(fillMs),
      `fill: ${perCampaign * options.campaigns} recipients in ${seconds(fillMs)} (${Math.round((perCampaign * options.campaigns) / (fillMs / 1000))}/s)`,
    );
    const before = await sizes(db.pool);
    note(
      "sizeBefore",
      before,
      `before: recipients ${mib(before.recipientsTotal)} (heap ${mib(before.recipientsHeap)}, index ${mib(before.recipientsIndexes)}), rejects ${mib(before.rejectsTotal)}`,
    );

    // forget on the full table: one number in every old campaign and in the running one.
    started = performance.now();
    const forgotten = await forgetNumber(db, { phone: "+6590000042", reason: "bench" });
    note(
      "forgetMs",
      Math.round(performance.now() - started),
      `forget on ${before.recipientRows} recipients: ${forgotten.recipients} rows in ${forgotten.campaigns} campaigns, ${Math.round(performance.now() - started)} ms`,
    );

    await getCampaignStatus(db, liveId); // warms the connection and Prisma up
    const liveStatusBeforeMs = await medianMs(() => getCampaignStatus(db, liveId));

    const walBefore = await walPosition(db.pool);
    const chunkMs: number[] = [];
    let lastChunk = performance.now();
    let lastRows = 0;
    started = performance.now();
    const report = await purgeFinishedCampaigns(db, {
      olderThanMs: 30 * 86_400_000,
      chunkRows: options.chunkRows,
      onProgress: (p) => {
        if (p.rowsDeleted !== lastRows) {
          chunkMs.push(performance.now() - lastChunk);
          lastRows = p.rowsDeleted;
          progressLine(`  purging campaign ${p.campaign}/${p.campaigns}: ${p.rowsDeleted}/${p.rowsTotal} rows`);
        }
        lastChunk = performance.now();
      },
    });
    progressLine(undefined);
    const purgeMs = performance.now() - started;
    if (!report) throw new Error("another purge holds the lock");
    const purgeWal = await walSince(db.pool, walBefore);
    note(
      "purge",
      {
        ...report,
        ms: Math.round(purgeMs),
        chunkP50Ms: percentile(chunkMs, 50),
        chunkP99Ms: percentile(chunkMs, 99),
        walBytes: purgeWal,
      },
      `purge: ${report.campaigns} campaigns, ${report.recipients} recipients + ${report.rejects} rejects in ${seconds(purgeMs)} ` +
        `(${Math.round((report.recipients + report.rejects) / (purgeMs / 1000))} rows/s; chunk of ${options.chunkRows} p50 ${percentile(chunkMs, 50).toFixed(0)} ms, p99 ${percentile(chunkMs, 99).toFixed(0)} ms; ${mib(purgeWal)} of WAL)`,
    );
    const afterDelete = await sizes(db.pool);
    note(
      "sizeAfterDelete",
      afterDelete,
      `after the deletes: recipients ${mib(afterDelete.recipientsTotal)} (the space is dead rows until VACUUM)`,
    );

    started = performance.now();
    const walBeforeVacuum = await walPosition(db.pool);
    await vacuumPurgedTables(db);
    const vacuumMs = performance.now() - started;
    const vacuumWal = await walSince(db.pool, walBeforeVacuum);
    const afterVacuum = await sizes(db.pool);
    note(
      "vacuum",
      { ms: Math.round(vacuumMs), sizes: afterVacuum, walBytes: vacuumWal },
      `VACUUM (ANALYZE) in ${seconds(vacuumMs)} (${mib(vacuumWal)} of WAL): recipients ${mib(afterVacuum.recipientsTotal)} (heap ${mib(afterVacuum.recipientsHeap)}, index ${mib(afterVacuum.recipientsIndexes)}), rejects ${mib(afterVacuum.rejectsTotal)}`,
    );

    await getCampaignStatus(db, liveId);
    const liveStatusAfterMs = await medianMs(() => getCampaignStatus(db, liveId));
    note(
      "liveStatusMs",
      { before: Math.round(liveStatusBeforeMs), after: Math.round(liveStatusAfterMs) },
      `status of the running campaign (${options.live} recipients), median of 5: ${liveStatusBeforeMs.toFixed(0)} ms before, ${liveStatusAfterMs.toFixed(0)} ms after`,
    );

    // The next campaign of the same size goes into the freed space: the table does not grow.
    started = performance.now();
    await fillCampaign(db.pool, perCampaign, { status: "completed" });
    const refillMs = performance.now() - started;
    const afterRefill = await sizes(db.pool);
    await db.pool.query(`ANALYZE recipients`);
    const liveStatusRefilledMs = await medianMs(() => getCampaignStatus(db, liveId));
    note(
      "liveStatusAfterNextCampaignMs",
      Math.round(liveStatusRefilledMs),
      `status of the running campaign once the next campaign is in: ${liveStatusRefilledMs.toFixed(0)} ms`,
    );
    note(
      "afterNextCampaign",
      { ms: Math.round(refillMs), sizes: afterRefill },
      `next campaign of ${perCampaign} in ${seconds(refillMs)}: recipients ${mib(afterRefill.recipientsTotal)} (heap ${mib(afterRefill.recipientsHeap)}, ` +
        `index ${mib(afterRefill.recipientsIndexes)}; ${mib(afterRefill.recipientsTotal - before.recipientsTotal)} more than before the purge)`,
    );

    if (options.partition) {
      // What a partitioned table would do instead: one campaign's partition dropped in one catalog change.
      await db.pool.query(
        `CREATE TABLE bench_recipients_partitioned (LIKE recipients INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY LIST (campaign_id)`,
      );
      await db.pool.query(
        `ALTER TABLE bench_recipients_partitioned ADD PRIMARY KEY (campaign_id, batch_sequence, phone)`,
      );
      await db.pool.query(`CREATE TABLE bench_recipients_rest PARTITION OF bench_recipients_partitioned DEFAULT`);
      await fillCampaign(db.pool, perCampaign, {
        status: "completed",
        table: "bench_recipients_partitioned",
        beforeRecipients: (id) =>
          db.pool
            .query(
              `CREATE TABLE bench_recipients_old PARTITION OF bench_recipients_partitioned FOR VALUES IN ('${id}')`,
            )
            .then(() => undefined),
      });
      started = performance.now();
      await db.pool.query(`ALTER TABLE bench_recipients_partitioned DETACH PARTITION bench_recipients_old`);
      await db.pool.query(`DROP TABLE bench_recipients_old`);
      const dropMs = performance.now() - started;
      note(
        "partitionDropMs",
        Math.round(dropMs),
        `DETACH + DROP of one ${perCampaign}-recipient partition: ${dropMs.toFixed(0)} ms`,
      );
    }

    await mkdir("bench-results", { recursive: true });
    const file = `bench-results/bench-purge-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
    await writeFile(file, JSON.stringify(figures, null, 2));
    console.log(`results: ${file}`);
  } finally {
    await db.close();
    if (!options.keep) {
      const url = new URL(options.databaseUrl);
      const name = decodeURIComponent(url.pathname.slice(1));
      url.pathname = "/postgres";
      const admin = new pg.Client({ connectionString: url.href });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    }
  }
}

await main();
