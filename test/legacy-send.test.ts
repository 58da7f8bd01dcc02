import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ProviderError, ProviderRequestError } from "../src/engagelab/errors.ts";
import { csvOf, createTestEnv, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

describe("legacy v1/send", () => {
  let env: TestEnv;
  beforeAll(async () => {
    // Legacy v1/send sends only templates of the legacy template store, approved.
    env = await createTestEnv("legacy", {
      sandbox: { legacyTemplates: [{ id: 2336, content: "Your week: %week%" }] },
    });
  });
  afterAll(async () => {
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  it("records 10 refused numbers of a 1000 batch with the provider's reason, and 990 sms_ids", async () => {
    const numbers = singaporeNumbers(1_000, 100_000);
    const refused = numbers.filter((_, i) => i % 100 === 7);
    env.sandbox.refuseNumbers(refused);
    const file = await env.writeCsv(
      "partial.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, {
      file,
      provider: "legacy",
      templateId: "2336",
      params: { week: "Tuesday" },
    });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report).toMatchObject({ status: "completed", recipients: { accepted: 990, failed: 10, pending: 0 } });
    } finally {
      await worker.stop();
    }
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch).toMatchObject({ state: "partial", totalCount: 1000, acceptedCount: 990, attempts: 1 });

    const failed = await env.db.prisma.recipient.findMany({
      where: { campaignId: campaign.campaignId, state: "failed" },
    });
    expect(failed.map((r) => r.phone).sort()).toEqual([...refused].sort());
    // Each failed item is that number's own refusal: its message, no code (41031 is the whole answer's).
    expect(failed.every((r) => r.failureCode === null && r.failureMessage === "Invalid phone number format")).toBe(
      true,
    );

    const accepted = await env.db.prisma.recipient.findMany({
      where: { campaignId: campaign.campaignId, state: "accepted" },
    });
    expect(accepted).toHaveLength(990);
    expect(accepted.every((r) => r.smsId !== null && r.smsId.endsWith(`$${r.phone}`))).toBe(true);
    expect(new Set(accepted.map((r) => r.smsId)).size).toBe(990);

    const ledger = await sandboxLedger(env, "legacy");
    expect(Object.keys(ledger)).toHaveLength(990);
    expect(refused.some((n) => n in ledger)).toBe(false);
  });

  it("a retry after a lost response re-uses request_id: the provider answers from its cache and sends nothing twice", async () => {
    const numbers = singaporeNumbers(500, 200_000);
    const file = await env.writeCsv(
      "lost.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    env.sandbox.failNext(1, "lose-response");
    const campaign = await launchCampaign(env, { file, provider: "legacy", templateId: "2336" });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients).toMatchObject({ accepted: 500, failed: 0, unknown: 0 });
    } finally {
      await worker.stop();
    }
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch).toMatchObject({ state: "sent", attempts: 2 });
    const stats = (await (await fetch(`${env.sandbox.url}/_sandbox/stats`)).json()) as {
      dedupHits: number;
      lostResponses: number;
    };
    expect(stats).toMatchObject({ lostResponses: 1, dedupHits: 1 });
    const ledger = await sandboxLedger(env, "legacy");
    expect(Object.keys(ledger)).toHaveLength(500);
    expect(Math.max(...Object.values(ledger))).toBe(1);
    // The ids recorded are the ones of the first (and only) send.
    const withIds = await env.db.prisma.recipient.count({
      where: { campaignId: campaign.campaignId, smsId: { not: null } },
    });
    expect(withIds).toBe(500);
  });

  it("a batch left in `sending` by a dead worker is re-sent with the same request_id inside the one-hour window", async () => {
    const numbers = singaporeNumbers(300, 300_000);
    const file = await env.writeCsv(
      "crash.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    // Simulate a worker that sent the request, then died before recording: the provider has it, Postgres says `sending`.
    env.sandbox.failNext(1, "lose-response");
    const campaign = await launchCampaign(env, { file, provider: "legacy", templateId: "2336" });
    const [planned] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    const { LegacySendApiProvider } = await import("../src/engagelab/legacy-send-api.ts");
    const { EngageLabHttpClient } = await import("../src/engagelab/http-client.ts");
    const http = new EngageLabHttpClient(env.config.engagelab.credentials, { timeoutMs: 2_000 });
    await new LegacySendApiProvider(http, env.sandbox.url)
      .sendBatch({
        campaignId: campaign.campaignId,
        batchId: planned!.id,
        sequence: 0,
        campaignName: "x",
        templateId: "2336",
        params: {},
        recipients: numbers.map((phone) => ({ phone, params: null })),
        idempotencyKey: planned!.idempotencyKey,
        sendOptions: {},
      })
      .then(
        () => expect.unreachable("the lost response must fail the direct send"),
        (error: unknown) => {
          // The setup must be what it claims: the provider sent it, the answer was lost in transit.
          expect(error).toBeInstanceOf(ProviderError);
          expect((error as ProviderError).requestMayHaveArrived).toBe(true);
        },
      );
    await http.close();
    expect(Object.keys(await sandboxLedger(env, "legacy"))).toHaveLength(300);
    expect(env.sandbox.ledger.stats()).toMatchObject({ lostResponses: 1, dedupHits: 0 });
    const longAgo = new Date(Date.now() - 60_000);
    await env.db.prisma.batch.update({
      where: { id: planned!.id },
      data: { state: "sending", attempts: 1, claimedAt: longAgo, firstClaimedAt: longAgo },
    });

    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients).toMatchObject({ accepted: 300, unknown: 0 });
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env, "legacy");
    expect(Object.keys(ledger)).toHaveLength(300);
    expect(Math.max(...Object.values(ledger))).toBe(1);
    // The re-send really happened, under the same request_id, and was answered from the provider's cache.
    const sends = env.sandbox.ledger.requestLog({ api: "legacy" });
    expect(sends.map((r) => r.outcome)).toEqual(["lose-response", "replay"]);
    expect(new Set(sends.map((r) => r.requestId))).toEqual(new Set([planned!.idempotencyKey]));
  });

  it("a retry long after an unanswered attempt is not sent: the request_id window has passed", async () => {
    const numbers = singaporeNumbers(200, 400_000);
    const file = await env.writeCsv(
      "late.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file, provider: "legacy", templateId: "2336" });
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    // As if: first attempt timed out two hours ago, then the campaign sat paused until now.
    await env.db.prisma.batch.updateMany({
      where: { campaignId: campaign.campaignId },
      data: {
        state: "retrying",
        attempts: 1,
        firstClaimedAt: twoHoursAgo,
        claimedAt: twoHoursAgo,
        lastAttemptAmbiguous: true,
      },
    });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients).toMatchObject({ unknown: 200, accepted: 0 });
    } finally {
      await worker.stop();
    }
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch!.errorMessage).toMatch(/request_id window has passed/);
    expect(await sandboxLedger(env, "legacy")).toEqual({});
  });

  // "digits": without the +; "00": with an international 00 prefix.
  it.each(["digits", "00"] as const)(
    "numbers echoed in the %s form are matched: refused ones fail with their own reason, the rest keep their sms_id",
    async (form) => {
      env.sandbox.setOptions({ legacyEchoForm: form });
      try {
        const numbers = singaporeNumbers(50, 500_000 + (form === "00" ? 100 : 0));
        const refused = [numbers[3]!, numbers[40]!];
        env.sandbox.refuseNumbers(refused);
        const file = await env.writeCsv(
          `echo-${form}.csv`,
          csvOf(
            ["phone"],
            numbers.map((n) => [n]),
          ),
        );
        const campaign = await launchCampaign(env, { file, provider: "legacy", templateId: "2336" });
        const worker = await startWorker(env);
        try {
          const report = await waitForCampaignEnd(env, campaign.campaignId);
          expect(report.recipients).toMatchObject({ accepted: 48, failed: 2, unknown: 0 });
        } finally {
          await worker.stop();
        }
        const recipients = await env.db.prisma.recipient.findMany({ where: { campaignId: campaign.campaignId } });
        const failed = recipients.filter((r) => r.state === "failed");
        expect(failed.map((r) => r.phone).sort()).toEqual([...refused].sort());
        expect(failed.every((r) => r.failureCode === null && r.failureMessage === "Invalid phone number format")).toBe(
          true,
        );
        const accepted = recipients.filter((r) => r.state === "accepted");
        expect(
          accepted.every((r) => r.smsId?.endsWith(form === "00" ? `$00${r.phone.slice(1)}` : `$${r.phone.slice(1)}`)),
        ).toBe(true);
        expect(Object.keys(await sandboxLedger(env, "legacy"))).toHaveLength(48);
      } finally {
        env.sandbox.setOptions({ legacyEchoForm: "as-sent" });
      }
    },
  );

  it("an answer echoing another request's request_id says nothing about this batch: unknown, never re-sent", async () => {
    const numbers = singaporeNumbers(40, 510_000);
    const file = await env.writeCsv(
      "foreign.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    env.sandbox.failNext(1, "foreign-answer");
    const campaign = await launchCampaign(env, { file, provider: "legacy", templateId: "2336" });
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients).toMatchObject({ unknown: 40, accepted: 0 });
    } finally {
      await worker.stop();
    }
    const [batch] = await env.db.prisma.batch.findMany({ where: { campaignId: campaign.campaignId } });
    expect(batch).toMatchObject({ state: "unknown", attempts: 1 });
    expect(batch!.errorMessage).toMatch(/echoes request_id "someone-else", not this batch's/);
    const ledger = await sandboxLedger(env, "legacy");
    expect(Object.keys(ledger)).toHaveLength(40);
    expect(Math.max(...Object.values(ledger))).toBe(1);
  });

  it("a fixed param over 16 characters or with a link is refused before anything is stored, naming the variable", async () => {
    const file = await env.writeCsv("fixed-vars.csv", csvOf(["phone"], [["+6581234561"]]));
    const before = await env.db.prisma.campaign.count();
    await expect(
      launchCampaign(env, { file, provider: "legacy", templateId: "2336", params: { week: "Tuesday and Wednesday" } }),
    ).rejects.toThrow(
      /template variable "week": 21 characters; legacy v1\/send takes at most 16 .*LEGACY_VAR_MAX_CHARS/,
    );
    await expect(
      launchCampaign(env, { file, provider: "legacy", templateId: "2336", params: { link: "www.shop.sg" } }),
    ).rejects.toThrow(/template variable "link": contains a link/);
    expect(await env.db.prisma.campaign.count()).toBe(before);
    // The messages API has no such rule.
    await expect(
      launchCampaign(env, { file, provider: "messages", params: { week: "Tuesday and Wednesday" }, dryRun: true }),
    ).resolves.toMatchObject({ dryRun: true });
  });

  it("personalised vars: a row with a long or linked value is a reject naming its row and variable; the rest is sent", async () => {
    const numbers = singaporeNumbers(5, 520_000);
    const file = await env.writeCsv(
      "row-vars.csv",
      csvOf(
        ["phone", "first_name", "code"],
        [
          [numbers[0]!, "Ann", "A1"],
          [numbers[1]!, "Bartholomew-Maximilian", "A2"], // spreadsheet row 3: 22 characters
          [numbers[2]!, "Cy", "http://x.io"], // row 4: a link
          [numbers[3]!, "Dee", "A4"],
          [numbers[4]!, "Éowyn", "A5"],
        ],
      ),
    );
    const campaign = await launchCampaign(env, {
      file,
      provider: "legacy",
      templateId: "2336",
      params: {},
      paramColumns: { name: "first_name", promo: "code" },
    });
    expect(campaign).toMatchObject({ recipientCount: 3, rejectedCount: 2 });
    const rejects = await env.db.prisma.reject.findMany({
      where: { campaignId: campaign.campaignId },
      orderBy: { rowNumber: "asc" },
    });
    expect(rejects.map((r) => [r.rowNumber, r.reason])).toEqual([
      [
        3,
        'template variable "name" (from "first_name") has 22 characters; legacy v1/send takes at most 16 per variable (LEGACY_VAR_MAX_CHARS)',
      ],
      [4, 'template variable "promo" (from "code") contains a link; legacy v1/send refuses links in variables'],
    ]);
    const worker = await startWorker(env);
    try {
      const report = await waitForCampaignEnd(env, campaign.campaignId);
      expect(report.recipients).toMatchObject({ accepted: 3, failed: 0 });
    } finally {
      await worker.stop();
    }
    expect(Object.keys(await sandboxLedger(env, "legacy")).sort()).toEqual([numbers[0], numbers[3], numbers[4]].sort());
    // Nothing the provider refused: the rule was applied before anything was sent.
    expect(env.sandbox.ledger.requestLog({ api: "legacy" }).every((r) => r.status === 200)).toBe(true);
  });

  it("LEGACY_VAR_MAX_CHARS=0 turns the length check off (for accounts whose limit EngageLab raised)", async () => {
    env.sandbox.setOptions({ legacyVarMaxChars: 0 });
    try {
      const file = await env.writeCsv("no-limit.csv", csvOf(["phone"], [["+6581234562"]]));
      const campaign = await launchCampaign(env, {
        file,
        provider: "legacy",
        templateId: "2336",
        params: { week: "Tuesday and Wednesday" },
        legacyVarMaxChars: 0,
      });
      const worker = await startWorker(env);
      try {
        expect((await waitForCampaignEnd(env, campaign.campaignId)).recipients).toMatchObject({ accepted: 1 });
      } finally {
        await worker.stop();
      }
    } finally {
      env.sandbox.setOptions({ legacyVarMaxChars: 16 });
    }
  });

  it("refuses, before storing anything, custom_args over 1 KB, a non-numeric template id and a bad sender", async () => {
    const file = await env.writeCsv("opts.csv", csvOf(["phone"], [["+6581234567"]]));
    const before = await env.db.prisma.campaign.count();
    const big = { note: "x".repeat(1_100) };
    await expect(
      launchCampaign(env, { file, provider: "legacy", templateId: "2336", sendOptions: { customArgs: big } }),
    ).rejects.toThrow(/custom_args: is \d+ bytes .* limit is 1 KB/);
    await expect(launchCampaign(env, { file, provider: "legacy", templateId: "welcome" })).rejects.toThrow(
      ProviderRequestError,
    );
    await expect(
      launchCampaign(env, { file, provider: "legacy", templateId: "2336", sendOptions: { from: "a b" } }),
    ).rejects.toThrow(/from:/);
    expect(await env.db.prisma.campaign.count()).toBe(before);
  });
});
