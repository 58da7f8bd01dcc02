// `npm run demo`: one whole campaign on this machine, no EngageLab account needed.
// Creates a fresh demo database next to DATABASE_URL's (smsblast_demo) and uses its own queue prefix, so
// it never touches real campaigns; starts the sandbox provider and a send worker in this process, sends the
// bundled example CSV with a progress bar, and prints a summary table.
// `npm run demo -- --serve` then keeps running with the web console and API on API_PORT (3000): it prints the
// console's address and a sign-in token, and the sandbox lists a ready template, until Ctrl-C.
import { fileURLToPath } from "node:url";
import pg from "pg";
import { loadConfig } from "../src/config/config.ts";
import { bindQueue } from "../src/runtime/queue-binding.ts";
import { createLogger } from "../src/config/logger.ts";
import { getCampaignStatus } from "../src/campaigns/campaign-status.ts";
import { launchCsvCampaign } from "../src/campaigns/launch-campaign.ts";
import { startSendWorker } from "../src/runtime/send-worker-runtime.ts";
import { createRedisConnection } from "../src/queue/redis.ts";
import { releaseQueuePrefix } from "../src/queue/deployment-claim.ts";
import { createSendQueue, enqueueBatches } from "../src/queue/send-queue.ts";
import { openDatabase } from "../src/store/database.ts";
import { migrateDatabase } from "../src/store/migrate.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { createApiToken } from "../src/access/api-tokens.ts";
import { createTemplatesApi } from "../src/engagelab/templates-api.ts";
import { startApiServer } from "../src/runtime/api-server.ts";
import { formatStatus, formatTable } from "../src/cli/format.ts";
import { waitForCampaign } from "../src/cli/progress.ts";

const file = fileURLToPath(new URL("../examples/demo-recipients.csv", import.meta.url));
const serve = process.argv.includes("--serve");

// The sandbox answers like EngageLab with 50 ms latency and 5 % transient 500s, so retries show up.
const sandbox = await startSandbox({ port: 0, latencyMs: 50, errorRate: 0.05 });
const base = loadConfig();
const demoDatabaseUrl = base.databaseUrl.replace(/\/[^/?]*(\?|$)/, "/smsblast_demo$1");
await dropDatabase(demoDatabaseUrl);
const config = loadConfig({
  ...process.env,
  DATABASE_URL: demoDatabaseUrl,
  QUEUE_PREFIX: "{smsblast-demo}",
  ENGAGELAB_MESSAGES_URL: sandbox.url,
  ENGAGELAB_SMS_URL: sandbox.url,
  ENGAGELAB_OTP_URL: sandbox.url,
  ENGAGELAB_API_KEY: "",
  ENGAGELAB_API_SECRET: "",
  BATCH_SIZE: process.env.BATCH_SIZE ?? "250",
  SEND_BACKOFF_MS: "200",
  LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
});
const log = createLogger(config.logLevel);
console.log(`sandbox provider on ${sandbox.url}`);
const migration = await migrateDatabase(config.databaseUrl);
console.log(
  `database ready (${migration.applied.length} migration(s) applied now, ${migration.alreadyApplied} before)`,
);

const db = openDatabase(config.databaseUrl);
const connection = createRedisConnection(config.redisUrl, "producer");
// The demo database was just re-created, so it is a new deployment: the demo's prefix (jobs of an earlier
// run included) is released for it.
const demoPrefix = config.queuePrefix!;
await createSendQueue(connection, { prefix: demoPrefix, attempts: 1, backoffMs: 1 }).obliterate({ force: true });
await releaseQueuePrefix(connection, demoPrefix);
const queue = createSendQueue(connection, {
  prefix: (await bindQueue(config, db, connection)).prefix,
  attempts: config.send.attempts,
  backoffMs: config.send.backoffMs,
});
const worker = await startSendWorker(config, log);
try {
  const started = Date.now();
  const campaign = await launchCsvCampaign(
    { db, log, enqueue: (campaignId, batchIds) => enqueueBatches(queue, campaignId, batchIds) },
    {
      file,
      name: "demo: shipping notice",
      templateId: "1",
      params: { order: "DEMO-42" },
      phoneColumn: "phone",
      provider: "messages",
      onUnknown: "at_most_once",
      batchSize: config.send.batchSize,
    },
  );
  console.log(
    `campaign ${campaign.campaignId}: ${campaign.recipientCount} recipients in ${campaign.batchIds.length} batches`,
  );
  await waitForCampaign(db, campaign.campaignId, { timeoutMs: 120_000, pollMs: 200 });
  const wallSeconds = (Date.now() - started) / 1000;
  const report = await getCampaignStatus(db, campaign.campaignId);
  const stats = (await (await fetch(`${sandbox.url}/_sandbox/stats`)).json()) as Record<string, unknown>;
  const ledger = (await (await fetch(`${sandbox.url}/_sandbox/sent`)).json()) as Record<string, number>;
  const receivedTwice = Object.values(ledger).filter((times) => times > 1).length;

  console.log(`\n${formatStatus(report)}\n`);
  console.log(
    formatTable([
      ["summary", ""],
      ["CSV rows", report.rows.total],
      ["rejected (invalid number)", report.rows.rejected],
      ["duplicates skipped", report.rows.duplicates],
      ["recipients", report.recipients.total],
      ["accepted by provider", report.recipients.accepted],
      ["failed", report.recipients.failed],
      ["unknown", report.recipients.unknown],
      ["provider 500s retried", Number(stats.errors ?? 0)],
      ["numbers received twice", receivedTwice],
      ["wall time (s)", wallSeconds.toFixed(2)],
    ]),
  );
  if (report.status !== "completed" || receivedTwice > 0) process.exitCode = 1;
  if (serve) await serveConsole();
} finally {
  await worker.stop();
  await queue.close();
  connection.disconnect();
  await db.close();
  await sandbox.close();
}

/** The demo starts from an empty database every time, so its summary describes this run only. */
async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: url.replace(/\/[^/?]*(\?|$)/, "/postgres$1") });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replaceAll('"', '""')}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** `--serve`: the console and API on the demo database, a sign-in token and a ready template, until Ctrl-C. */
async function serveConsole(): Promise<void> {
  const { api, close } = createTemplatesApi(config);
  const template = await api.create({
    name: "demo: order shipped",
    content: "Hi %first_name%, your order %order% has shipped.",
    type: 0,
  });
  await close();
  await fetch(`${sandbox.url}/_sandbox/templates/${template.templateId}/approval`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ approval_status: 1 }),
  });
  const server = await startApiServer(config, log);
  const { secret } = await createApiToken(db, { name: `demo-${Date.now().toString(36)}`, role: "admin" });
  console.log(
    [
      "",
      `web console: ${server.url}/`,
      `sign-in token (admin): ${secret}`,
      `try it: New campaign → Legacy SMS API template ${template.templateId} ("${template.content}") → ${file}`,
      "(the send worker and the sandbox keep running; Ctrl-C stops everything)",
    ].join("\n"),
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  console.log("stopping");
  await server.stop();
}
