// One producer process, measured alone: CSV → validated, de-duplicated recipients and planned batches in
// Postgres, batches queued. Prints one JSON line with its figures. Used by scripts/bench.ts.
import { loadConfig } from "../../src/config/config.ts";
import { bindQueue } from "../../src/runtime/queue-binding.ts";
import { createLogger } from "../../src/config/logger.ts";
import { launchCsvCampaign } from "../../src/campaigns/launch-campaign.ts";
import { createRedisConnection } from "../../src/queue/redis.ts";
import { createSendQueue, enqueueBatches } from "../../src/queue/send-queue.ts";
import { openDatabase } from "../../src/store/database.ts";

const file = process.argv[2];
if (!file) throw new Error("usage: ingest-child.ts <file.csv>");
const config = loadConfig();
const log = createLogger("warn");
const db = openDatabase(config.databaseUrl);
const connection = createRedisConnection(config.redisUrl, "producer");
const queue = createSendQueue(connection, {
  prefix: (await bindQueue(config, db, connection)).prefix,
  attempts: config.send.attempts,
  backoffMs: config.send.backoffMs,
});
const baselineRssMb = Math.round(process.memoryUsage().rss / 1048576);
let peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
let peakAt = 0;
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  if (m.rss > peak.rss) {
    peak = {
      rss: m.rss,
      heapTotal: m.heapTotal,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    };
    peakAt = performance.now();
  }
}, 25);
// The bench starts its CPU window at this line, after module loading and connecting.
console.log("launching");
const started = performance.now();
const startedAtMs = performance.timeOrigin + started;
let enqueueMs = 0;
const cpuAtStart = process.cpuUsage();
// onProgress is called every 50k rows and once more when the last row is staged: the last call marks the
// end of staging (the producer's CSV parsing and normalisation); planning after it runs in Postgres.
let stageEnd = { at: started, cpu: cpuAtStart };
const campaign = await launchCsvCampaign(
  {
    db,
    log,
    enqueue: async (id, batchIds) => {
      const t0 = performance.now();
      await enqueueBatches(queue, id, batchIds);
      enqueueMs = Math.round(performance.now() - t0);
    },
  },
  {
    file,
    name: `bench ${file}`,
    templateId: "1",
    params: { order: "BENCH" },
    phoneColumn: "phone",
    provider: "messages",
    onUnknown: "at_most_once",
    batchSize: config.send.batchSize,
    templateCheck: false,
    // BENCH_STREAM=1: `send --stream`, batches queued while the list is read.
    sendWhileReading: process.env.BENCH_STREAM === "1",
    onProgress: (rows) => {
      stageEnd = { at: performance.now(), cpu: process.cpuUsage(cpuAtStart) };
      // Rows staged so far, for the bench's plot (--plot): "progress <rows> <epoch ms>".
      console.log(`progress ${rows} ${Date.now()}`);
    },
  },
);
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
await queue.close();
connection.disconnect();
await db.close();
console.log(
  JSON.stringify({
    campaignId: campaign.campaignId,
    rows: campaign.totalRows,
    recipients: campaign.recipientCount,
    rejected: campaign.rejectedCount,
    duplicates: campaign.duplicateCount,
    batches: campaign.batchIds.length,
    seconds,
    ...campaign.timings,
    firstStepMs: "firstStepMs" in campaign ? campaign.firstStepMs : undefined,
    enqueueMs,
    // Cores the producer used while staging (1.0 = its main thread fully busy).
    stageCpuCores:
      Math.round(((stageEnd.cpu.user + stageEnd.cpu.system) / 1000 / Math.max(1, stageEnd.at - started)) * 100) / 100,
    // Epoch ms when the launch began (after module loading and connecting), for end-to-end timing.
    startedAtMs: Math.round(startedAtMs),
    // From process start to the launch call: module loading (tsx) and set-up.
    startupMs: Math.round(started),
    rowsPerSecond: Math.round(campaign.totalRows / seconds),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    baselineRssMb,
    // When the sampled peak happened, in ms after the launch call (compare with stageMs / planMs).
    peakAtMs: Math.round(peakAt - started),
    atPeakMb: Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round(v / 1048576)])),
  }),
);
