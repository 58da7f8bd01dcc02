// `npm run bench:api [-- --rows 200000 --seconds 5 --clients 50 --sse-clients 200 --sse-seconds 10 --sse-rows 100000
// --upload-gb 0.05 --api-node-options "…"]`: the HTTP API on this machine. In one process (server and client
// together, so the figures are a floor): upload throughput of a generated CSV through POST /api/v1/uploads beside
// the CLI's ingest (launchCsvCampaign) of the same file, and requests per second with p50 / p99 latency of
// GET /api/v1/campaigns/:id. Then with the server as a child process (workers/api.ts, compiled when `npm run build`
// made dist/; its RSS its own): `--sse-clients` event streams of a campaign a send worker child is sending through
// the sandbox (time to first event, events received, server RSS, GET latency meanwhile), and the server's peak RSS
// growth while a generated `--upload-gb` CSV streams through POST /api/v1/uploads.
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
import { createSendQueue, enqueueBatches } from "../src/queue/send-queue.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { measureSse, startApiChild, uploadGenerated } from "./bench/api-child.ts";
import { ChildSet } from "./bench/processes.ts";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "200000" },
    seconds: { type: "string", default: "5" },
    clients: { type: "string", default: "50" },
    "sse-clients": { type: "string", default: "200" },
    "sse-seconds": { type: "string", default: "10" },
    "sse-rows": { type: "string", default: "100000" },
    // 1 for the README figure (about 4M rows); the default keeps a normal run short.
    "upload-gb": { type: "string", default: "0.05" },
    // NODE_OPTIONS of the server children, e.g. --max-old-space-size=64 (see README "HTTP API" performance).
    "api-node-options": { type: "string", default: "" },
  },
});
const rows = Number(values.rows);
const seconds = Number(values.seconds);
const clients = Number(values.clients);
const sseClients = Number(values["sse-clients"]);
const sseSeconds = Number(values["sse-seconds"]);
const sseRows = Number(values["sse-rows"]);
const uploadBytes = Math.round(Number(values["upload-gb"]) * 1e9);
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
  // The bench database was just re-created: a new deployment takes the bench's prefix, and the jobs an earlier
  // run left under it (its campaigns are gone with its database) are deleted: this prefix is the bench's own.
  const redis = createRedisConnection(config.redisUrl, "producer");
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${config.queuePrefix!}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
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
    await server.stop();
    const child = await childPhases({ config, log, db, secret, dir });
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
      rssGrowthDuringUploadMbInProcess: Math.round((peakRss - rssBefore) / 1024 / 1024),
      getCampaign: {
        clients,
        requestsPerSecond: Math.round(latencies.length / seconds),
        p50Ms: Number(pct(0.5).toFixed(1)),
        p99Ms: Number(pct(0.99).toFixed(1)),
      },
      ...child,
    };
    console.log(JSON.stringify(figures, null, 2));
  } finally {
    await server.stop(); // a no-op once stopped
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The server as a child process, beside a sandbox (in this process) and a send worker child: the SSE streams of a
 * campaign being sent, then the big generated upload.
 */
async function childPhases(ctx: {
  config: ReturnType<typeof loadConfig>;
  log: ReturnType<typeof createLogger>;
  db: ReturnType<typeof openDatabase>;
  secret: string;
  dir: string;
}) {
  const { config, log, db, secret, dir } = ctx;
  const children = new ChildSet();
  process.once("exit", () => children.killAllNow());
  const sandbox = await startSandbox({ port: 0 });
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    REDIS_URL: config.redisUrl,
    QUEUE_PREFIX: config.queuePrefix,
    LOG_LEVEL: "warn",
    API_WRITE_RATE_LIMIT: "100000",
    ENGAGELAB_MESSAGES_URL: sandbox.url,
    ENGAGELAB_SMS_URL: sandbox.url,
    ENGAGELAB_OTP_URL: sandbox.url,
    CSV_MAX_BYTES: String(uploadBytes + (16 << 20)),
  };
  const apiEnv = { ...childEnv, NODE_OPTIONS: values["api-node-options"] };
  try {
    const api = await startApiChild(children, apiEnv);

    // A campaign a worker is sending while the clients watch: paced by the queue's rate limit so that it is
    // still running when the window ends.
    const file = path.join(dir, "sse.csv");
    let csv = "phone\n";
    for (let i = 0; i < sseRows; i++) csv += `+65${81_000_000 + i}\n`;
    await writeFile(file, csv);
    csv = "";
    const connection = createRedisConnection(config.redisUrl, "producer");
    const queue = createSendQueue(connection, { prefix: config.queuePrefix!, attempts: 3, backoffMs: 1000 });
    const launched = await launchCsvCampaign(
      { db, log, enqueue: (campaignId, batchIds) => enqueueBatches(queue, campaignId, batchIds) },
      {
        file,
        name: "bench sse",
        allowRepeat: true,
        templateId: "1",
        params: {},
        phoneColumn: "phone",
        provider: "messages",
        onUnknown: "at_most_once",
        batchSize: 1000,
        templateCheck: false,
      },
    );
    await queue.close();
    connection.disconnect();
    const batches = launched.batchIds.length;
    const worker = children.spawnTs("worker", "workers/send-worker.ts", [], {
      ...childEnv,
      SEND_CONCURRENCY: "2",
      SEND_RATE_LIMIT: String(Math.max(1, Math.floor(batches / (sseSeconds * 2)))),
    });
    for (let i = 0; ; i++) {
      const { rows: sent } = await db.pool.query(
        `SELECT 1 FROM batches WHERE campaign_id = $1 AND state = 'sent' LIMIT 1`,
        [launched.campaignId],
      );
      if (sent.length > 0) break;
      if (!worker.isRunning() || i > 1200)
        throw new Error(`the send worker did not start:\n${worker.stderr().slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const sse = await measureSse(api, secret, launched.campaignId, { clients: sseClients, seconds: sseSeconds });
    const { rows: progress } = await db.pool.query<{ status: string; sent: number }>(
      `SELECT c.status, (SELECT count(*)::int FROM batches b WHERE b.campaign_id = c.id AND b.state = 'sent') AS sent
       FROM campaigns c WHERE c.id = $1`,
      [launched.campaignId],
    );
    await children.stop(worker);
    await fetch(`${api.url}/api/v1/campaigns/${launched.campaignId}/cancel`, {
      method: "POST",
      headers: { authorization: `Bearer ${secret}` },
    });

    await children.stop(api.handle);

    // The big upload, on a fresh server (the streams above grew its heap, which would hide growth), after a
    // small one so that one-time allocations (code, pools) are not counted as growth.
    const uploadApi = await startApiChild(children, apiEnv);
    await uploadGenerated(uploadApi, secret, 2e6);
    const upload = await uploadGenerated(uploadApi, secret, uploadBytes);
    await db.pool.query(`TRUNCATE upload_judgements, upload_rows`); // gigabytes of disk back at once
    await children.stop(uploadApi.handle);
    const { uploadId: _, ...uploadFigures } = upload;
    return {
      sse: {
        ...sse,
        campaign: {
          recipients: sseRows,
          batches,
          statusAtEnd: progress[0]?.status,
          batchesSentAtEnd: progress[0]?.sent,
        },
      },
      bigUpload: uploadFigures,
      apiNodeOptions: values["api-node-options"] || null,
    };
  } finally {
    await children.stopAll();
    await sandbox.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
