import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, SANDBOX_API_KEY } from "../src/config/config.ts";
import { createTemplatesApi } from "../src/engagelab/templates-api.ts";
import { csvOf, createTestEnv, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

// Three platforms, three pairs (docs/engagelab-apis.md#platforms-and-credentials).
const PAIRS = {
  messages: { key: "msg-key-4b1e", secret: "msg-secret-90aa" },
  sms: { key: "sms-user-77c2", secret: "sms-key-1f0d" },
  otp: { key: "otp-key-e35b", secret: "otp-secret-2c48" },
};
const OWN_PAIRS = {
  ENGAGELAB_MESSAGES_KEY: PAIRS.messages.key,
  ENGAGELAB_MESSAGES_SECRET: PAIRS.messages.secret,
  ENGAGELAB_SMS_USER: PAIRS.sms.key,
  ENGAGELAB_SMS_KEY: PAIRS.sms.secret,
  ENGAGELAB_OTP_KEY: PAIRS.otp.key,
  ENGAGELAB_OTP_SECRET: PAIRS.otp.secret,
};
const REAL_URLS = {
  ENGAGELAB_MESSAGES_URL: "https://smsapi.engagelab.com",
  ENGAGELAB_SMS_URL: "https://sms.api.engagelab.cc",
  ENGAGELAB_OTP_URL: "https://otp.api.engagelab.cc",
};

describe("one key pair per platform: configuration", () => {
  it("takes each platform's own pair, the ENGAGELAB_API_* pair for the others, the sandbox's for sandbox URLs", () => {
    const own = loadConfig({ ...REAL_URLS, ...OWN_PAIRS }).engagelab.credentials;
    expect(own).toEqual({
      messages: { apiKey: PAIRS.messages.key, apiSecret: PAIRS.messages.secret },
      sms: { apiKey: PAIRS.sms.key, apiSecret: PAIRS.sms.secret },
      otp: { apiKey: PAIRS.otp.key, apiSecret: PAIRS.otp.secret },
    });
    const mixed = loadConfig({
      ...REAL_URLS,
      ENGAGELAB_SMS_USER: "u",
      ENGAGELAB_SMS_KEY: "k",
      ENGAGELAB_API_KEY: "fallback-key",
      ENGAGELAB_API_SECRET: "fallback-secret",
    }).engagelab.credentials;
    expect(mixed.sms).toEqual({ apiKey: "u", apiSecret: "k" });
    expect(mixed.messages).toEqual({ apiKey: "fallback-key", apiSecret: "fallback-secret" });
    expect(mixed.otp).toEqual(mixed.messages);
    // Default URLs are the sandbox's; docker-compose reaches it as http://sandbox:4010.
    expect(loadConfig({}).engagelab.credentials.otp.apiKey).toBe(SANDBOX_API_KEY);
    expect(loadConfig({ ENGAGELAB_SMS_URL: "http://sandbox:4010" }).engagelab.credentials.sms.apiKey).toBe(
      SANDBOX_API_KEY,
    );
  });

  it("refuses half a pair, naming both variables and never the value", () => {
    const attempt = () => loadConfig({ ENGAGELAB_OTP_KEY: "otp-value-5521" });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/ENGAGELAB_OTP_KEY and ENGAGELAB_OTP_SECRET must be set together/);
    expect(attempt).not.toThrow(/otp-value-5521/);
    expect(() => loadConfig({ ENGAGELAB_API_SECRET: "s" })).toThrow(
      /ENGAGELAB_API_KEY and ENGAGELAB_API_SECRET must be set together/,
    );
  });

  it("fails at start-up when a platform's URL is EngageLab's and it has neither its own pair nor the fallback", () => {
    const attempt = () =>
      loadConfig({
        ...REAL_URLS,
        ENGAGELAB_MESSAGES_KEY: "mk",
        ENGAGELAB_MESSAGES_SECRET: "ms",
      });
    expect(attempt).toThrow(ConfigError);
    let message = "";
    try {
      attempt();
    } catch (error) {
      message = (error as Error).message;
    }
    // Both missing platforms at once, each with the variables that fix it; messages has its pair.
    expect(message).toMatch(
      /ENGAGELAB_SMS_URL points at sms\.api\.engagelab\.cc, not the sandbox: set ENGAGELAB_SMS_USER and ENGAGELAB_SMS_KEY .*or ENGAGELAB_API_KEY and ENGAGELAB_API_SECRET/,
    );
    expect(message).toMatch(
      /ENGAGELAB_OTP_URL points at otp\.api\.engagelab\.cc.*ENGAGELAB_OTP_KEY and ENGAGELAB_OTP_SECRET/,
    );
    expect(message).not.toMatch(/ENGAGELAB_MESSAGES_URL/);
    expect(message).not.toMatch(/\bmk\b|\bms\b/);
  });
});

describe("one key pair per platform: against the sandbox", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("platform_keys", { sandbox: { credentials: PAIRS }, env: OWN_PAIRS });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  const basic = (pair: { key: string; secret: string }) =>
    `Basic ${Buffer.from(`${pair.key}:${pair.secret}`).toString("base64")}`;
  async function post(path: string, pair: { key: string; secret: string }, body: unknown) {
    const response = await fetch(`${env.sandbox.url}${path}`, {
      method: "POST",
      headers: { authorization: basic(pair), "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as { code?: number } };
  }

  it("the sandbox refuses a request signed with another platform's pair, with that platform's code", async () => {
    const messages = { to: ["+6581234567"], template: { id: "promo", params: {} } };
    const legacy = { to: ["+6581234567"], body: { template_id: 1, vars: { order: "1" } } };
    const custom = { to: "+6581234567", template: { id: "notice", params: {} } };
    expect(await post("/v1/messages", PAIRS.sms, messages)).toMatchObject({ status: 401, json: { code: 2001 } });
    expect(await post("/v1/send", PAIRS.messages, legacy)).toMatchObject({ status: 401, json: { code: 30000 } });
    expect(await post("/v1/custom-messages", PAIRS.messages, custom)).toMatchObject({
      status: 401,
      json: { code: 2001 },
    });
    const templates = await fetch(`${env.sandbox.url}/v1/templates/1`, {
      headers: { authorization: basic(PAIRS.otp) },
    });
    expect(templates.status).toBe(401);
    expect(await templates.json()).toMatchObject({ code: 30000 });
    // Each with its own pair goes through.
    expect((await post("/v1/messages", PAIRS.messages, messages)).status).toBe(200);
    expect((await post("/v1/send", PAIRS.sms, legacy)).status).toBe(200);
    expect((await post("/v1/custom-messages", PAIRS.otp, custom)).status).toBe(200);
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  it("each provider signs with its own platform's pair: a campaign on each API sends every number once", async () => {
    const file = (name: string, numbers: string[]) =>
      env.writeCsv(
        name,
        csvOf(
          ["phone"],
          numbers.map((n) => [n]),
        ),
      );
    const messages = singaporeNumbers(50, 1_000);
    const legacy = singaporeNumbers(50, 2_000);
    const custom = singaporeNumbers(20, 3_000);
    const campaigns = [
      await launchCampaign(env, { file: await file("m.csv", messages), provider: "messages", templateId: "promo" }),
      await launchCampaign(env, { file: await file("l.csv", legacy), provider: "legacy", templateId: "1" }),
      await launchCampaign(env, { file: await file("c.csv", custom), provider: "custom", templateId: "notice" }),
    ];
    // The template API is the legacy platform's: it answers with the sms pair.
    const templates = createTemplatesApi(env.config);
    try {
      expect((await templates.api.get("1")).templateId).toBe("1");
    } finally {
      await templates.close();
    }
    const worker = await startWorker(env);
    try {
      for (const c of campaigns) {
        expect(await waitForCampaignEnd(env, c.campaignId)).toMatchObject({ status: "completed" });
      }
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger).sort()).toEqual([...messages, ...legacy, ...custom].sort());
    expect(Math.max(...Object.values(ledger))).toBe(1);
    expect(env.sandbox.ledger.requestLog().filter((r) => r.outcome === "unauthorized")).toEqual([]);
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  it("pairs swapped between platforms: the sandbox refuses them and the campaign pauses naming the platform", async () => {
    const swapped = await createTestEnv("platform_swapped", {
      sandbox: { credentials: PAIRS },
      env: {
        ...OWN_PAIRS,
        // The legacy pair given as the current platform's and the other way round.
        ENGAGELAB_MESSAGES_KEY: PAIRS.sms.key,
        ENGAGELAB_MESSAGES_SECRET: PAIRS.sms.secret,
        ENGAGELAB_SMS_USER: PAIRS.messages.key,
        ENGAGELAB_SMS_KEY: PAIRS.messages.secret,
      },
    });
    try {
      const numbers = singaporeNumbers(30, 4_000);
      const file = await swapped.writeCsv(
        "s.csv",
        csvOf(
          ["phone"],
          numbers.map((n) => [n]),
        ),
      );
      const messages = await launchCampaign(swapped, { file, provider: "messages", templateId: "promo" });
      const legacy = await launchCampaign(swapped, { file, provider: "legacy", templateId: "1", allowRepeat: true });
      const worker = await startWorker(swapped);
      let reasons: Record<string, string | null>;
      try {
        reasons = await waitFor(async () => {
          const rows = await swapped.db.prisma.campaign.findMany({
            where: { id: { in: [messages.campaignId, legacy.campaignId] } },
          });
          if (!rows.every((r) => r.status === "paused")) return undefined;
          return Object.fromEntries(rows.map((r) => [r.id, r.statusReason]));
        });
      } finally {
        await worker.stop();
      }
      expect(reasons[messages.campaignId]).toMatch(
        /^provider refused the account \(code 2001\) on the current SMS platform \(v1\/messages; key pair ENGAGELAB_MESSAGES_KEY\/ENGAGELAB_MESSAGES_SECRET\): Authentication failed/,
      );
      expect(reasons[legacy.campaignId]).toMatch(
        /^provider refused the account \(code 30000\) on the legacy SMS platform \(v1\/send and v1\/templates; key pair ENGAGELAB_SMS_USER\/ENGAGELAB_SMS_KEY\): Unauthorized/,
      );
      expect(await sandboxLedger(swapped)).toEqual({});
      const refused = swapped.sandbox.ledger.requestLog();
      expect(refused.length).toBeGreaterThanOrEqual(2);
      expect(refused.every((r) => r.outcome === "unauthorized")).toBe(true);
      const logs = swapped.logOutput();
      for (const pair of [PAIRS.messages, PAIRS.sms]) {
        expect(logs).not.toContain(pair.secret);
        expect(logs).not.toContain(basic(pair).slice("Basic ".length));
      }
    } finally {
      await swapped.cleanup();
    }
  });
});
