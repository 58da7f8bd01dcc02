// The naive baseline: the same CSV parsing and number normalisation as the real producer, but one Prisma
// `create` per recipient (and per reject) and one BullMQ job per recipient (`queue.add` in a loop).
// usage: naive-child.ts <file.csv> <totalRows> [maxSeconds=120] [sampleRows=10000]
// If the whole list would take longer than maxSeconds (judged after sampleRows rows), it stops there and
// extrapolates. Prints one JSON line.
import { Queue } from "bullmq";
import { loadConfig } from "../../src/config/config.ts";
import { bindQueue } from "../../src/runtime/queue-binding.ts";
import { readCsvRecipients } from "../../src/recipients/csv-source.ts";
import { createRedisConnection } from "../../src/queue/redis.ts";
import { openDatabase } from "../../src/store/database.ts";

const [file, totalArg, maxSecondsArg, sampleArg] = process.argv.slice(2);
if (!file || !totalArg) throw new Error("usage: naive-child.ts <file.csv> <totalRows> [maxSeconds] [sampleRows]");
const totalRows = Number(totalArg);
const maxSeconds = Number(maxSecondsArg ?? 120);
const sampleRows = Math.min(Number(sampleArg ?? 10_000), totalRows);

const config = loadConfig();
const db = openDatabase(config.databaseUrl);
const connection = createRedisConnection(config.redisUrl, "producer");
// A queue of its own: no send worker ever picks these jobs up.
const queue = new Queue("naive-send", {
  connection,
  prefix: (await bindQueue(config, db, connection)).prefix,
  defaultJobOptions: { attempts: config.send.attempts, removeOnComplete: true, removeOnFail: true },
});

const started = performance.now();
const campaign = await db.prisma.campaign.create({
  data: {
    name: `naive ${file}`,
    templateId: "1",
    templateParams: { order: "BENCH" },
    provider: "messages",
    status: "running",
  },
});
const seen = new Set<string>();
let rows = 0;
let recipients = 0;
let extrapolated = false;
let stoppedBy: "end" | "projection" | "deadline" = "end";
for await (const row of readCsvRecipients(file, { phoneColumn: "phone" })) {
  rows++;
  if (row.phone === null) {
    await db.prisma.reject.create({
      data: {
        campaignId: campaign.id,
        rowNumber: row.rowNumber,
        rawValue: row.raw,
        reason: row.rejectReason ?? "invalid",
      },
    });
  } else if (!seen.has(row.phone)) {
    seen.add(row.phone);
    const batchSequence = Math.floor(recipients / config.send.batchSize);
    await db.prisma.recipient.create({
      data: { campaignId: campaign.id, batchSequence, phone: row.phone, rowNumber: row.rowNumber },
    });
    await queue.add("send-one", { campaignId: campaign.id, phone: row.phone });
    recipients++;
  }
  const elapsed = (performance.now() - started) / 1000;
  if (rows === sampleRows && rows < totalRows && (elapsed / rows) * totalRows > maxSeconds) {
    extrapolated = true;
    stoppedBy = "projection";
    break;
  }
  if (elapsed > maxSeconds * 1.5 && rows < totalRows) {
    extrapolated = true;
    stoppedBy = "deadline";
    break;
  }
}
const seconds = (performance.now() - started) / 1000;
const rowsPerSecond = rows / seconds;

await queue.obliterate({ force: true }).catch(() => {});
await queue.close();
connection.disconnect();
await db.pool.query(`DELETE FROM recipients WHERE campaign_id = $1`, [campaign.id]);
await db.pool.query(`DELETE FROM campaigns WHERE id = $1`, [campaign.id]);
await db.close();
console.log(
  JSON.stringify({
    rowsDone: rows,
    recipients,
    seconds,
    rowsPerSecond: Math.round(rowsPerSecond),
    extrapolated,
    stoppedBy,
    projectedSecondsForAll: Math.round((totalRows / rowsPerSecond) * 10) / 10,
  }),
);
