// `npm run bench:api [-- --rows 200000 --seconds 5 --clients 50]`: the HTTP API on this machine, in one process
// (server and client together, so the figures are a floor): upload throughput of a generated CSV through
// POST /api/v1/uploads beside the CLI's ingest (launchCsvCampaign) of the same file, the RSS growth during the
// upload, and requests per second with p50 / p99 latency of GET /api/v1/campaigns/:id.
import { createReadStream } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import pg from "pg";
import { createApiToken } from "../src/access/api-tokens.ts";
import { launchCsvCampaign } from "../src/campaigns/launch-campaign.ts";
import { loadConfig } from "../src/config/config.ts";
import { createLogger } from "../src/config/logger.ts";
import { startApiServer } from "../src/runtime/api-server.ts";
import { openDatabase } from "../src/store/database.ts";
import { migrateDatabase } from "../src/store/migrate.ts";
import { releaseQueuePrefix } from "../src/queue/deployment-claim.ts";
import { createRedisConnection } from "../src/queue/redis.ts";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "200000" },
    seconds: { type: "string", default: "5" },
    clients: { type: "string", default: "50" },
  },
});
const rows = Number(values.rows);
const seconds = Number(values.seconds);
const clients = Number(values.clients);
const ADMIN_URL = process.env.BENCH_ADMIN_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const databaseUrl = ADMIN_URL.replace(/\/[^/]*$/, "/smsblast_bench_api");

async function main(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS smsblast_bench_api WITH (FORCE)`);
  await admin.end();
  await migrateDatabase(databaseUrl);
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: "warn",
    QUEUE_PREFIX: "{smsblast-bench-api}",
    API_WRITE_RATE_LIMIT: "100000",
  });
  const log = createLogger(config.logLevel);
  const db = openDatabase(databaseUrl);
  // The bench database was just re-created: a new deployment takes the bench's prefix.
  const redis = createRedisConnection(config.redisUrl, "producer");
  await releaseQueuePrefix(redis, config.queuePrefix!);
  redis.disconnect();
  const server = await startApiServer(config, log, { host: "127.0.0.1", port: 0 });
  const { secret } = await createApiToken(db, { name: "bench", role: "admin" });
  const dir = await mkdtemp(path.join(os.tmpdir(), "smsblast-bench-api-"));
  try {
    const file = path.join(dir, "list.csv");
    let csv = "phone,name\n";
    for (let i = 0; i < rows; i++) csv += `+65${81_000_000 + i},user${i % 50}\n`;
    await writeFile(file, csv);
    csv = "";
    const bytes = (await stat(file)).size;

    // The CLI's path: the same file streamed, judged and planned in one transaction (no queue).
    const cliStarted = performance.now();
    await launchCsvCampaign(
      { db, log, enqueue: async () => {} },
      {
        file,
        name: "bench cli",
        templateId: "1",
        params: {},
        phoneColumn: "phone",
        provider: "messages",
        onUnknown: "at_most_once",
        batchSize: 1000,
        templateCheck: false,
      },
    );
    const cliSeconds = (performance.now() - cliStarted) / 1000;

    let peakRss = process.memoryUsage().rss;
    const rssBefore = peakRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    const uploadStarted = performance.now();
    const response = await fetch(`${server.url}/api/v1/uploads?filename=list.csv`, {
      method: "POST",
      headers: { authorization: `Bearer ${secret}`, "content-type": "text/csv" },
      body: Readable.toWeb(createReadStream(file)) as ReadableStream,
      duplex: "half",
    } as RequestInit);
    const upload = (await response.json()) as { uploadId: string; rows: number };
    const uploadSeconds = (performance.now() - uploadStarted) / 1000;
    clearInterval(sampler);
    if (response.status !== 201 || upload.rows !== rows)
      throw new Error(`upload failed: ${response.status} ${JSON.stringify(upload)}`);

    const mapStarted = performance.now();
    await fetch(`${server.url}/api/v1/uploads/${upload.uploadId}/mapping`, {
      method: "PUT",
      headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
      body: JSON.stringify({ phoneColumn: "phone", map: { name: "name" }, templateContent: "Hi {{name}}" }),
    });
    const mapSeconds = (performance.now() - mapStarted) / 1000;
    const checkStarted = performance.now();
    await (
      await fetch(`${server.url}/api/v1/uploads/${upload.uploadId}/check`, {
        headers: { authorization: `Bearer ${secret}` },
      })
    ).json();
    const checkSeconds = (performance.now() - checkStarted) / 1000;

    const { rows: campaigns } = await db.pool.query<{ id: string }>(`SELECT id FROM campaigns LIMIT 1`);
    const url = `${server.url}/api/v1/campaigns/${campaigns[0]!.id}`;
    const latencies: number[] = [];
    const deadline = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < deadline) {
          const started = performance.now();
          const r = await fetch(url, { headers: { authorization: `Bearer ${secret}` } });
          await r.arrayBuffer();
          latencies.push(performance.now() - started);
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!;
    const mb = bytes / 1024 / 1024;
    const figures = {
      rows,
      megabytes: Number(mb.toFixed(1)),
      uploadRowsPerSecond: Math.round(rows / uploadSeconds),
      uploadMegabytesPerSecond: Number((mb / uploadSeconds).toFixed(1)),
      cliIngestRowsPerSecond: Math.round(rows / cliSeconds),
      uploadVsCli: Number((cliSeconds / uploadSeconds).toFixed(2)),
      mappingSeconds: Number(mapSeconds.toFixed(2)),
      checkSeconds: Number(checkSeconds.toFixed(2)),
      rssGrowthDuringUploadMb: Math.round((peakRss - rssBefore) / 1024 / 1024),
      getCampaign: {
        clients,
        requestsPerSecond: Math.round(latencies.length / seconds),
        p50Ms: Number(pct(0.5).toFixed(1)),
        p99Ms: Number(pct(0.99).toFixed(1)),
      },
    };
    console.log(JSON.stringify(figures, null, 2));
  } finally {
    await server.stop();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
