import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createProviders } from "../src/engagelab/providers.ts";
import { sendOneMessage, RecipientInputError } from "../src/campaigns/send-one.ts";
import { csvOf, createTestEnv, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

describe("v1/custom-messages: one recipient per request", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("custom", { env: { CUSTOM_PARALLELISM: "4" } });
  });
  afterAll(async () => {
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  it("settles each recipient on its own: refusals fail one recipient, a 500 retries only the unsettled ones", async () => {
    const numbers = singaporeNumbers(60, 40_000);
    env.sandbox.refuseNumbers([numbers[5]!, numbers[42]!]);
    env.sandbox.failNext(1, "error");
    const file = await env.writeCsv(
      "custom.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, {
      file,
      provider: "custom",
      templateId: "notification-template",
      params: { order: "9" },
    });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report).toMatchObject({ status: "completed", recipients: { accepted: 58, failed: 2, pending: 0 } });
    } finally {
      await worker.stop();
    }
    const accepted = await env.db.prisma.recipient.findMany({
      where: { campaignId: campaign.campaignId, state: "accepted" },
    });
    expect(accepted.every((r) => /^\d{19}$/.test(r.messageId ?? "") && r.sendChannel === "sms")).toBe(true);
    const failed = await env.db.prisma.recipient.findMany({
      where: { campaignId: campaign.campaignId, state: "failed" },
    });
    expect(failed.map((r) => r.failureCode)).toEqual([3002, 3002]);
    const ledger = await sandboxLedger(env, "custom");
    expect(Object.keys(ledger)).toHaveLength(58);
    expect(Math.max(...Object.values(ledger))).toBe(1);
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch).toMatchObject({ state: "partial", attempts: 2 });
  });

  it("a response lost for one recipient makes only that recipient unknown; the untried ones are sent once", async () => {
    const numbers = singaporeNumbers(40, 41_000);
    env.sandbox.failNext(1, "lose-response");
    const file = await env.writeCsv(
      "lost-one.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file, provider: "custom", templateId: "notification-template" });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report).toMatchObject({ status: "completed", recipients: { accepted: 39, unknown: 1, pending: 0 } });
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env, "custom");
    expect(Object.keys(ledger)).toHaveLength(40); // the lost one was sent too, once
    expect(Math.max(...Object.values(ledger))).toBe(1);
  });

  it("send-one to a suppressed number sends nothing and says so", async () => {
    const { addSuppressions } = await import("../src/store/suppression-repository.ts");
    await addSuppressions(env.db, ["+6581234599"], "opt-out", "test");
    const registry = createProviders(env.config);
    try {
      const deps = { db: env.db, log: env.log, providers: registry.providers, providerTimeoutMs: 3_000 };
      const result = await sendOneMessage(deps, { to: "+6581234599", templateId: "notification-template", params: {} });
      expect(result.state).toBe("suppressed");
      expect(await sandboxLedger(env, "custom")).toEqual({});
    } finally {
      await registry.close();
    }
  });

  it("send-one delivers to an e-mail address and records message_id and send_channel", async () => {
    const registry = createProviders(env.config);
    try {
      const deps = { db: env.db, log: env.log, providers: registry.providers, providerTimeoutMs: 3_000 };
      const result = await sendOneMessage(deps, {
        to: "Support@Example.com",
        templateId: "code-otp",
        params: { code: "123456" },
      });
      expect(result).toMatchObject({ to: "support@example.com", state: "accepted", sendChannel: "email" });
      expect(result.messageId).toMatch(/^\d{19}$/);
      expect(await sandboxLedger(env, "custom")).toEqual({ "support@example.com": 1 });

      const phone = await sendOneMessage(deps, {
        to: "8123 4567",
        templateId: "notification-template",
        params: {},
        defaultRegion: "SG",
      });
      expect(phone).toMatchObject({ to: "+6581234567", state: "accepted", sendChannel: "sms" });

      const refused = await sendOneMessage(deps, { to: "+6581234568", templateId: "code-otp", params: {} });
      expect(refused).toMatchObject({ state: "failed", failureCode: 3002 });

      await expect(sendOneMessage(deps, { to: "not@an", templateId: "x", params: {} })).rejects.toThrow(
        RecipientInputError,
      );
      await expect(sendOneMessage(deps, { to: "12", templateId: "x", params: {} })).rejects.toThrow(
        /not a valid phone number/,
      );
    } finally {
      await registry.close();
    }
  });
});
