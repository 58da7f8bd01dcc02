import { createHmac, timingSafeEqual } from "node:crypto";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideDelivery, webhookRetryDelayMs } from "../src/access/webhook-dispatch.ts";
import { setWebhook, WebhookSecretMissingError } from "../src/access/webhooks.ts";
import { webhookEventOf } from "../src/model/webhook-events.ts";
import { importContactsFromCsv } from "../src/recipients/audience-import.ts";
import { startApiServer, type RunningApiServer } from "../src/runtime/api-server.ts";
import { startTestApi, type ApiError, type ApiTestServer, type Launched } from "./helpers/api-client.ts";
import { sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";
import { cliEnv, runCli } from "./helpers/cli.ts";
import { createTestEnv, csvOf, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";

const SIGNING_SECRET = "webhook-test-secret-3f9a1c7e5b2d8f4a6c0e";
/** A secret of the receiver's own, in its URL: it must reach the receiver and nothing else (logs, lists, audit). */
const RECEIVER_QUERY_SECRET = "receiver-key-8d2b6f0a4c";
const RECIPIENTS = 40;

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  url: string;
  /** What the receiver answered (0: it let the request hang). */
  answered: number;
}

/** A webhook receiver on a random port, answering each request as `answer(n)` says (n = 0, 1, …). */
async function startReceiver(answer: (n: number) => number | "hang" = () => 200) {
  const received: Received[] = [];
  const server = http.createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => {
      const decision = answer(received.length);
      received.push({
        headers: request.headers,
        body,
        url: request.url ?? "",
        answered: decision === "hang" ? 0 : decision,
      });
      if (decision === "hang") return; // the sender's deadline ends it
      response.writeHead(decision, { "content-type": "text/plain" }).end("ok");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks/smsblast?key=${RECEIVER_QUERY_SECRET}`,
    received,
    /** Bodies of the requests answered 2xx, in arrival order. */
    delivered: () =>
      received.filter((r) => r.answered >= 200 && r.answered < 300).map((r) => JSON.parse(r.body) as Event),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Event {
  id: string;
  event: string;
  campaignId: string;
  status: string;
  reason: string | null;
  at: string;
}

/** What a receiver does, written here from the README, not with the product's code. */
function verifies(key: string, r: Received): boolean {
  const timestamp = String(r.headers["x-smsblast-timestamp"]);
  const given = String(r.headers["x-smsblast-signature"]);
  const expected = "sha256=" + createHmac("sha256", key).update(`${timestamp}.${r.body}`).digest("hex");
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

describe("webhook policy", () => {
  const policy = { backoffMs: 5_000, backoffMaxMs: 3_600_000, maxAttempts: 20 };
  it("names each announced status change, and announces no draft or scheduled change", () => {
    expect(webhookEventOf("draft", "running")).toBe("started");
    expect(webhookEventOf("scheduled", "running")).toBe("started");
    expect(webhookEventOf("paused", "running")).toBe("resumed");
    expect(webhookEventOf("running", "paused")).toBe("paused");
    expect(webhookEventOf("running", "completed")).toBe("completed");
    expect(webhookEventOf("running", "failed")).toBe("failed");
    expect(webhookEventOf("scheduled", "cancelled")).toBe("cancelled");
    expect(webhookEventOf("draft", "scheduled")).toBeUndefined();
    expect(webhookEventOf("paused", "scheduled")).toBeUndefined();
  });
  it("doubles the delay per attempt within ±20 %, never past the cap; a 2xx delivers, the last failure gives up", () => {
    expect(webhookRetryDelayMs(1, policy, () => 0.5)).toBe(5_000);
    expect(webhookRetryDelayMs(3, policy, () => 0.5)).toBe(20_000);
    expect(webhookRetryDelayMs(3, policy, () => 0)).toBe(16_000);
    expect(webhookRetryDelayMs(3, policy, () => 1)).toBe(24_000);
    expect(webhookRetryDelayMs(19, policy, () => 1)).toBe(3_600_000);
    expect(decideDelivery(1, { kind: "answered", status: 204 }, policy)).toEqual({ kind: "delivered", status: 204 });
    expect(decideDelivery(1, { kind: "answered", status: 301 }, policy, () => 0.5)).toEqual({
      kind: "retry",
      status: 301,
      error: null,
      delayMs: 5_000,
    });
    expect(decideDelivery(20, { kind: "no-answer", error: "timeout" }, policy)).toEqual({
      kind: "given-up",
      status: null,
      error: "timeout",
    });
  });
});

describe("outgoing webhooks: signed campaign events, retried, in order, once", () => {
  let env: TestEnv;
  let api: ApiTestServer;
  let second: RunningApiServer;
  const receivers: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    env = await createTestEnv("webhooks", {
      env: {
        WEBHOOK_SIGNING_SECRET: SIGNING_SECRET,
        WEBHOOK_POLL_MS: "100",
        WEBHOOK_BACKOFF_MS: "200",
        WEBHOOK_BACKOFF_MAX_MS: "1000",
        WEBHOOK_MAX_ATTEMPTS: "4",
        WEBHOOK_TIMEOUT_MS: "1000",
        BATCH_SIZE: "10",
      },
    });
    api = await startTestApi(env);
    // A second API process on the same database: two dispatchers compete for every delivery.
    second = await startApiServer(env.config, env.log, { host: "127.0.0.1", port: 0 });
    const contacts = await env.writeCsv(
      "contacts.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(RECIPIENTS).map((p) => [p]),
      ),
    );
    await importContactsFromCsv(env.db, contacts, { phoneColumn: "phone", tags: ["vip"] });
  });
  afterAll(async () => {
    await second?.stop();
    await api?.server.stop();
    for (const r of receivers) await r.close();
    await env?.cleanup();
  });

  const launch = async (extra: Record<string, unknown> = {}) => {
    const launched = await api.json<Launched>("POST", "/api/v1/campaigns", {
      token: api.tokens.operator,
      body: {
        audience: "vip",
        templateId: "1",
        params: { order: "A-1" },
        templateCheck: false,
        allowRepeat: true,
        ...extra,
      },
    });
    expect(launched.status).toBe(201);
    return launched.body.campaignId;
  };
  const createToken = async (name: string) =>
    expect((await api.json("POST", "/api/v1/tokens", { body: { name, role: "viewer" } })).status).toBe(201);
  const setHook = async (name: string, url: string) => {
    const set = await api.json<{ signingKey: string; url: string }>("PUT", `/api/v1/tokens/${name}/webhook`, {
      body: { url },
    });
    expect(set.status).toBe(200);
    return set.body.signingKey;
  };

  it("delivers a campaign's events in order, signed, the first on its third attempt after two 500s, none twice", async () => {
    const receiver = await startReceiver((n) => (n < 2 ? 500 : 200));
    receivers.push(receiver);
    await createToken("crm");
    const key = await setHook("crm", receiver.url);
    expect(key).toMatch(/^whsec_[\w-]{43}$/);

    // Launched with no worker running: the campaign is running with its batches queued; paused and resumed
    // through the API, then a worker sends it to the end (the worker's code path completes it).
    const campaignId = await launch({ name: "webhook run" });
    expect(
      (await api.json("POST", `/api/v1/campaigns/${campaignId}/pause`, { token: api.tokens.operator })).status,
    ).toBe(200);
    expect(
      (await api.json("POST", `/api/v1/campaigns/${campaignId}/resume`, { token: api.tokens.operator })).status,
    ).toBe(200);
    const worker = await startWorker(env);
    try {
      expect((await waitForCampaignEnd(env, campaignId)).status).toBe("completed");
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger)).toHaveLength(RECIPIENTS);
    expect(Object.values(ledger).every((n) => n === 1)).toBe(true);

    await waitFor(() => Promise.resolve(receiver.delivered().length >= 4 ? true : undefined), 20_000);
    // Quiet for a while (several poll rounds of both dispatchers): a duplicate would have arrived by now.
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const events = receiver.delivered();
    expect(events.map((e) => e.event)).toEqual(["started", "paused", "resumed", "completed"]);
    expect(events.map((e) => e.status)).toEqual(["running", "paused", "running", "completed"]);
    expect(events.every((e) => e.campaignId === campaignId)).toBe(true);
    expect(events[1]!.reason).toMatch(/^paused by test-operator-/);
    expect(new Set(events.map((e) => e.id)).size).toBe(4);
    const times = events.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    // Two refusals, then the same event again: 6 requests in all, the first three the `started` event.
    expect(receiver.received.map((r) => r.answered)).toEqual([500, 500, 200, 200, 200, 200]);
    const ids = receiver.received.map((r) => (JSON.parse(r.body) as Event).id);
    expect(ids.slice(0, 3)).toEqual([events[0]!.id, events[0]!.id, events[0]!.id]);
    for (const r of receiver.received) {
      expect(verifies(key, r)).toBe(true);
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["x-smsblast-event-id"]).toBe((JSON.parse(r.body) as Event).id);
      expect(Math.abs(Number(r.headers["x-smsblast-timestamp"]) * 1000 - Date.now())).toBeLessThan(60_000);
      expect(r.url).toBe(`/hooks/smsblast?key=${RECEIVER_QUERY_SECRET}`);
    }
    // A tampered body does not verify.
    expect(
      verifies(key, { ...receiver.received[2]!, body: receiver.received[2]!.body.replace("started", "paused") }),
    ).toBe(false);

    const { rows } = await env.db.pool.query<{ attempts: number; last_status: number; delivered: boolean }>(
      `SELECT d.attempts, d.last_status, d.delivered_at IS NOT NULL AS delivered FROM webhook_deliveries d
       JOIN campaign_events e ON e.id = d.event_id WHERE e.campaign_id = $1 ORDER BY e.id`,
      [campaignId],
    );
    expect(rows).toEqual([
      { attempts: 3, last_status: 200, delivered: true },
      { attempts: 1, last_status: 200, delivered: true },
      { attempts: 1, last_status: 200, delivered: true },
      { attempts: 1, last_status: 200, delivered: true },
    ]);
    const state = await api.json<{ url: string; deliveries: { delivered: number; open: number } }>(
      "GET",
      "/api/v1/tokens/crm/webhook",
    );
    expect(state.body).toMatchObject({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/hooks\/smsblast$/) as unknown,
      deliveries: { delivered: 4, open: 0 },
    });
  });

  it("announces a cancel with its reason; a revoked token's webhook gets nothing more", async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    await createToken("backoffice");
    await setHook("backoffice", receiver.url);
    const later = { startAt: new Date(Date.now() + 3_600_000).toISOString() };

    const cancelled = await launch({ name: "to cancel", ...later }); // scheduled: not announced
    expect(
      (await api.json("POST", `/api/v1/campaigns/${cancelled}/cancel`, { token: api.tokens.operator })).status,
    ).toBe(200);
    await waitFor(() => Promise.resolve(receiver.delivered().length >= 1 ? true : undefined), 10_000);
    expect(receiver.delivered()).toEqual([
      expect.objectContaining({
        event: "cancelled",
        campaignId: cancelled,
        status: "cancelled",
        reason: expect.stringMatching(/^cancelled by test-operator-/) as unknown,
      }),
    ]);

    expect((await api.json("DELETE", "/api/v1/tokens/backoffice")).status).toBe(200);
    const afterRevoke = await launch({ name: "after revoke", ...later });
    await api.json("POST", `/api/v1/campaigns/${afterRevoke}/cancel`, { token: api.tokens.operator });
    // The event is fanned out (to the live tokens only), then a few more rounds pass.
    await waitFor(async () => {
      const { rows } = await env.db.pool.query(
        `SELECT 1 FROM campaign_events WHERE campaign_id = $1 AND fanned_out_at IS NOT NULL`,
        [afterRevoke],
      );
      return rows.length > 0 ? true : undefined;
    }, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(receiver.received).toHaveLength(1);
    const { rows } = await env.db.pool.query(
      `SELECT 1 FROM webhook_deliveries d JOIN api_tokens t ON t.id = d.token_id
       WHERE t.name = 'backoffice' AND d.campaign_id = $1`,
      [afterRevoke],
    );
    expect(rows).toHaveLength(0);
  });

  it("gives up after WEBHOOK_MAX_ATTEMPTS (a hang is a timeout), and the next event still goes", async () => {
    const receiver = await startReceiver((n) => (n === 0 ? "hang" : n < 4 ? 503 : 204));
    receivers.push(receiver);
    await createToken("flaky");
    await setHook("flaky", receiver.url);
    const later = { startAt: new Date(Date.now() + 3_600_000).toISOString() };
    const first = await launch({ name: "given up", ...later });
    await api.json("POST", `/api/v1/campaigns/${first}/cancel`, { token: api.tokens.operator });
    await waitFor(async () => {
      const state = await api.json<{ deliveries: { givenUp: number } }>("GET", "/api/v1/tokens/flaky/webhook");
      return state.body.deliveries.givenUp === 1 ? state.body : undefined;
    }, 20_000);
    expect(receiver.received.map((r) => r.answered)).toEqual([0, 503, 503, 503]);
    const { rows } = await env.db.pool.query<{ attempts: number; last_status: number }>(
      `SELECT d.attempts, d.last_status FROM webhook_deliveries d JOIN api_tokens t ON t.id = d.token_id
       WHERE t.name = 'flaky' AND d.given_up_at IS NOT NULL`,
    );
    expect(rows).toEqual([{ attempts: 4, last_status: 503 }]);
    expect(env.logOutput()).toMatch(/"error":"timeout"/);

    const next = await launch({ name: "after give-up", ...later });
    await api.json("POST", `/api/v1/campaigns/${next}/cancel`, { token: api.tokens.operator });
    await waitFor(() => Promise.resolve(receiver.delivered().length === 1 ? true : undefined), 10_000);
    expect(receiver.delivered()[0]).toMatchObject({ event: "cancelled", campaignId: next });
  });

  it("refuses a webhook without WEBHOOK_SIGNING_SECRET, a plain-http remote URL, and below admin", async () => {
    await createToken("nosecret");
    const unset = { webhooks: { ...env.config.webhooks, signingSecret: undefined } };
    await expect(setWebhook(env.db, unset, { name: "nosecret", url: "https://example.com/hook" })).rejects.toThrow(
      WebhookSecretMissingError,
    );
    await expect(setWebhook(env.db, unset, { name: "nosecret", url: "https://example.com/hook" })).rejects.toThrow(
      /WEBHOOK_SIGNING_SECRET/,
    );
    const { rows } = await env.db.pool.query<{ webhook_url: string | null }>(
      `SELECT webhook_url FROM api_tokens WHERE name = 'nosecret'`,
    );
    expect(rows[0]?.webhook_url).toBeNull();

    const cli = await runCli(
      ["tokens", "webhook", "nosecret", "--url", "https://example.com/hook"],
      cliEnv(env, { WEBHOOK_SIGNING_SECRET: "" }),
    );
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(
      /^smsblast: webhooks are signed with keys derived from WEBHOOK_SIGNING_SECRET, which is not set/,
    );

    const plain = await api.json<ApiError>("PUT", "/api/v1/tokens/nosecret/webhook", {
      body: { url: "http://crm.example.com/hook" },
    });
    expect(plain.status).toBe(400);
    expect(plain.body.error).toMatchObject({ code: "invalid_webhook_url", field: "url" });
    const unknown = await api.json<ApiError>("PUT", "/api/v1/tokens/nobody/webhook", {
      body: { url: "https://example.com/hook" },
    });
    expect(unknown.status).toBe(404);
    const operator = await api.json("PUT", "/api/v1/tokens/nosecret/webhook", {
      token: api.tokens.operator,
      body: { url: "https://example.com/hook" },
    });
    expect(operator.status).toBe(403);

    // The CLI with the secret: the key it prints is the one the API makes (same derivation), and each set
    // makes a new one.
    const viaCli = await runCli(
      ["tokens", "webhook", "nosecret", "--url", "https://example.com/hook"],
      cliEnv(env, { WEBHOOK_SIGNING_SECRET: SIGNING_SECRET }),
    );
    expect(viaCli.code).toBe(0);
    const cliKey = viaCli.stdout.trim();
    expect(cliKey).toMatch(/^whsec_[\w-]{43}$/);
    const again = await setHook("nosecret", "https://example.com/hook");
    expect(again).not.toBe(cliKey);
    const cleared = await runCli(["tokens", "webhook", "nosecret", "--clear"], cliEnv(env));
    expect(cleared.code).toBe(0);
    const listed = await api.json<{ name: string; webhook: string | null }[]>("GET", "/api/v1/tokens");
    expect(listed.body.find((t) => t.name === "nosecret")?.webhook).toBeNull();
    expect(listed.body.find((t) => t.name === "crm")?.webhook).toMatch(/\/hooks\/smsblast$/);
  });

  it("never logs the signing secret, a signing key or the receiver's URL secret", async () => {
    const output = env.logOutput();
    expect(output).toContain("webhook"); // the dispatcher did log its work
    expect(output).not.toContain(SIGNING_SECRET);
    expect(output).not.toContain("whsec_");
    expect(output).not.toContain(RECEIVER_QUERY_SECRET);
    const { rows } = await env.db.pool.query<{ details: unknown }>(`SELECT details FROM audit_log`);
    expect(JSON.stringify(rows)).not.toContain(RECEIVER_QUERY_SECRET);
  });
});
