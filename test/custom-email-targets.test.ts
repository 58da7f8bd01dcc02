import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EMAIL_NOT_ACCEPTED } from "../src/recipients/email.ts";
import { rowJudge } from "../src/recipients/csv-source.ts";
import { NothingToSendError } from "../src/campaigns/launch-campaign.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";
import { csvOf, createTestEnv, type TestEnv } from "./helpers/test-env.ts";

// Seed 002: v1/custom-messages takes a phone number or an e-mail address; the bulk APIs take numbers only.
describe("e-mail targets in custom campaigns", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("email_targets");
  });
  afterAll(async () => {
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  const rows = [
    ["+6581110001", "phone"],
    ["Ann.Lee@Example.COM", "mixed case"],
    [" ann.lee@example.com ", "the same address again"],
    ["bob@example.org", "another"],
    ["bob@", "not an address"],
    ["ops@mail", "no domain dot"],
    ["+6581110001", "the same number again"],
  ];
  const file = () =>
    env.writeCsv(
      "mixed.csv",
      csvOf(
        ["phone", "note"],
        rows.map(([target, note]) => [`"${target}"`, note!]),
      ),
    );

  it("a custom campaign sends to e-mail rows (validated, lower-cased, de-duplicated) and phone rows alike", async () => {
    const campaign = await launchCampaign(env, { file: await file(), provider: "custom", templateId: "notice" });
    expect(campaign).toMatchObject({ totalRows: 7, recipientCount: 3, rejectedCount: 2, duplicateCount: 2 });
    const rejects = await env.db.prisma.reject.findMany({
      where: { campaignId: campaign.campaignId },
      orderBy: { rowNumber: "asc" },
    });
    // Spreadsheet rows (the header is row 1); the address differing only in case and spaces is a duplicate.
    expect(rejects.map((r) => [r.rowNumber, r.reason])).toEqual([
      [4, "duplicate of row 3"],
      [6, "not a valid e-mail address"],
      [7, "not a valid e-mail address"],
      [8, "duplicate of row 2"],
    ]);
    const worker = await startWorker(env);
    try {
      expect(await waitForCampaignEnd(env, campaign.campaignId)).toMatchObject({
        status: "completed",
        recipients: { accepted: 3 },
      });
    } finally {
      await worker.stop();
    }
    const recipients = await env.db.prisma.recipient.findMany({
      where: { campaignId: campaign.campaignId },
      orderBy: { phone: "asc" },
    });
    expect(recipients.map((r) => [r.phone, r.sendChannel])).toEqual([
      ["+6581110001", "sms"],
      ["ann.lee@example.com", "email"],
      ["bob@example.org", "email"],
    ]);
    expect(await sandboxLedger(env, "custom")).toEqual({
      "+6581110001": 1,
      "ann.lee@example.com": 1,
      "bob@example.org": 1,
    });
  });

  it("messages and legacy campaigns still reject e-mail rows, saying that only custom campaigns take them", async () => {
    for (const provider of ["messages", "legacy"] as const) {
      const campaign = await launchCampaign(env, { file: await file(), provider, templateId: "1" });
      expect(campaign).toMatchObject({ recipientCount: 1, rejectedCount: 5 });
      const reasons = await env.db.prisma.reject.findMany({
        where: { campaignId: campaign.campaignId },
        orderBy: { rowNumber: "asc" },
      });
      expect(reasons.map((r) => r.reason)).toEqual([
        ...Array<string>(5).fill(EMAIL_NOT_ACCEPTED),
        "duplicate of row 2",
      ]);
    }
    const onlyEmail = await env.writeCsv("only.csv", csvOf(["phone"], [["ann@example.com"]]));
    const refused = await launchCampaign(env, { file: onlyEmail, templateId: "1" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NothingToSendError);
    expect((refused as Error).message).toContain(EMAIL_NOT_ACCEPTED);
    expect(rowJudge(["to"], { phoneColumn: "to", acceptEmail: true })(["X@Y.io"], 1)).toMatchObject({
      phone: "x@y.io",
      rejectReason: null,
    });
  });
});
