// The peer design of the benchmark (issue 18): what most notification systems do — one BullMQ job per
// recipient, each job one POST /v1/custom-messages (the project's own client) and one UPDATE of its row.
// usage: peer-child.ts worker <concurrency>   a BullMQ worker; prints "ready", on SIGTERM closes and prints JSON
//        peer-child.ts producer               enqueues a job per row of bench_peer_recipients; prints JSON
// The queue prefix is PEER_QUEUE_PREFIX; the rows are set up by scripts/bench.ts (createPeerRecipients).
import { Queue, Worker, type Job } from "bullmq";
import pg from "pg";
import { loadConfig } from "../../src/config/config.ts";
import { createProviders } from "../../src/engagelab/providers.ts";
import { createRedisConnection } from "../../src/queue/redis.ts";
import { PEER_ATTEMPTS, PEER_QUEUE_NAME, PEER_TABLE, type PeerJob } from "./peer.ts";

const [mode, concurrencyArg] = process.argv.slice(2);
const prefix = process.env.PEER_QUEUE_PREFIX;
if (!prefix || (mode !== "worker" && mode !== "producer"))
  throw new Error("usage: PEER_QUEUE_PREFIX=… peer-child.ts worker <concurrency> | producer");
const config = loadConfig();
// pg's default pool size: what such a worker usually runs with.
const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 10, application_name: "smsblast-peer" });

if (mode === "producer") {
  const connection = createRedisConnection(config.redisUrl, "producer");
  const queue = new Queue<PeerJob>(PEER_QUEUE_NAME, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: PEER_ATTEMPTS,
      backoff: { type: "exponential", delay: 1000 },
      removeOnComplete: true,
      removeOnFail: true,
    },
  });
  await queue.waitUntilReady();
  const { rows } = await pool.query<{ id: string; phone: string }>(`SELECT id, phone FROM ${PEER_TABLE} ORDER BY id`);
  const firstEnqueueAtMs = Date.now();
  for (let i = 0; i < rows.length; i += 1000) {
    await queue.addBulk(
      rows.slice(i, i + 1000).map((r) => ({ name: "send-one", data: { recipientId: r.id, to: r.phone } })),
    );
  }
  const enqueuedAtMs = Date.now();
  await queue.close();
  connection.disconnect();
  await pool.end();
  console.log(JSON.stringify({ jobs: rows.length, firstEnqueueAtMs, enqueuedAtMs }));
} else {
  const concurrency = Number(concurrencyArg ?? 16);
  const providers = createProviders(config);
  const connection = createRedisConnection(config.redisUrl, "worker");
  let completed = 0;
  let failedAttempts = 0;
  let lastCompletedAtMs = 0;
  const worker = new Worker<PeerJob>(
    PEER_QUEUE_NAME,
    async (job: Job<PeerJob>) => {
      const { messageId, sendChannel } = await providers.custom.sendOne(job.data.to, "1", { order: "BENCH" });
      await pool.query(
        `UPDATE ${PEER_TABLE} SET status = 'sent', message_id = $2, send_channel = $3, attempts = $4, sent_at = clock_timestamp() WHERE id = $1`,
        [job.data.recipientId, messageId, sendChannel, job.attemptsMade + 1],
      );
    },
    { connection, prefix, concurrency },
  );
  worker.on("completed", () => {
    completed++;
    lastCompletedAtMs = Date.now();
  });
  worker.on("failed", (job, error) => {
    failedAttempts++;
    // The last attempt: record the outcome, so the bench does not wait for a row that will never be sent.
    if (job && job.attemptsMade >= PEER_ATTEMPTS)
      void pool
        .query(`UPDATE ${PEER_TABLE} SET status = 'failed', error = $2 WHERE id = $1`, [
          job.data.recipientId,
          error.message.slice(0, 500),
        ])
        .catch(() => {});
  });
  worker.on("error", () => {});
  await worker.waitUntilReady();
  console.log("ready");
  process.once("SIGTERM", () => {
    void (async () => {
      await worker.close();
      await providers.close();
      connection.disconnect();
      await pool.end();
      console.log(JSON.stringify({ completed, failedAttempts, lastCompletedAtMs }));
      process.exit(0);
    })();
  });
}
