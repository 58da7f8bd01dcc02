import { PassThrough } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { launchAudienceCampaign, launchCsvCampaign, type LaunchDeps } from "../src/campaigns/launch-campaign.ts";
import { exportRejects } from "../src/campaigns/rejects-export.ts";
import { TemplatePreflightError } from "../src/campaigns/template-preflight.ts";
import { createTemplatesApi } from "../src/engagelab/templates-api.ts";
import { importContactsFromCsv, importSuppressionsFromCsv } from "../src/recipients/audience-import.ts";
import { saveSegment, AudienceError } from "../src/store/audience-repository.ts";
import { addSuppressions } from "../src/store/suppression-repository.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";
import { launchCampaign, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";

describe("audiences: suppression, personalisation, database audiences, rejects, pre-flight", () => {
  let env: TestEnv;
  let deps: LaunchDeps;
  let templates: ReturnType<typeof createTemplatesApi>;
  const base = {
    name: "t",
    params: {},
    provider: "messages" as const,
    onUnknown: "at_most_once" as const,
    batchSize: 1000,
  };

  beforeAll(async () => {
    env = await createTestEnv("audience");
    templates = createTemplatesApi(env.config);
    deps = { db: env.db, log: env.log, enqueue: async () => {}, templates: templates.api };
  });
  afterAll(async () => {
    await templates?.close();
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  it("skips suppressed numbers and opted-out contacts with reason `suppressed`", async () => {
    const numbers = singaporeNumbers(10, 500_000);
    await addSuppressions(env.db, [numbers[1]!, numbers[2]!], "complaint", "test");
    const listFile = await env.writeCsv("optouts.csv", csvOf(["phone"], [[numbers[3]!], ["junk"]]));
    const imported = await importSuppressionsFromCsv(env.db, listFile, { phoneColumn: "phone", reason: "opt-out" });
    expect(imported).toMatchObject({ rows: 2, added: 1 });
    expect(imported.rejects).toHaveLength(1);

    const file = await env.writeCsv(
      "s.csv",
      csvOf(
        ["phone"],
        numbers.map((n) => [n]),
      ),
    );
    const campaign = await launchCampaign(env, { file });
    expect(campaign).toMatchObject({ recipientCount: 7, suppressedCount: 3, rejectedCount: 3 });
    const rejects = await env.db.prisma.reject.findMany({
      where: { campaignId: campaign.campaignId },
      orderBy: { rowNumber: "asc" },
    });
    expect(rejects.map((r) => [r.rowNumber, r.reason])).toEqual([
      [3, "suppressed"],
      [4, "suppressed"],
      [5, "suppressed"],
    ]);
  });

  it("maps CSV columns to per-recipient params and batches identical params together", async () => {
    const rows = [
      ["+6581110001", "Ann", "Gold"],
      ["+6581110002", "Bob", "Silver"],
      ["+6581110003", "Ann", "Gold"],
      ["+6581110004", "Cat", "Gold"],
      ["+6581110005", "Bob", "Silver"],
    ];
    const file = await env.writeCsv("map.csv", csvOf(["phone", "first_name", "tier"], rows));
    const campaign = await launchCsvCampaign(deps, {
      ...base,
      file,
      phoneColumn: "phone",
      templateId: "1",
      params: { order: "X1" },
      paramColumns: { name: "first_name", level: "tier" },
      templateCheck: false,
    });
    expect(campaign.batchIds).toHaveLength(3); // Ann/Gold ×2, Bob/Silver ×2, Cat/Gold
    const batches = await env.db.prisma.batch.findMany({
      where: { campaignId: campaign.campaignId },
      orderBy: { sequence: "asc" },
    });
    expect(batches.map((b) => [b.size, b.params])).toEqual([
      [2, { order: "X1", name: "Ann", level: "Gold" }],
      [2, { order: "X1", name: "Bob", level: "Silver" }],
      [1, { order: "X1", name: "Cat", level: "Gold" }],
    ]);
  });

  it("a dry run prints the plan and stores nothing", async () => {
    const file = await env.writeCsv(
      "dry.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(2_500, 600_000).map((n) => [n]),
      ),
    );
    const before = await env.db.prisma.campaign.count();
    const plan = await launchCsvCampaign(deps, {
      ...base,
      file,
      phoneColumn: "phone",
      templateId: "1",
      params: { order: "1" },
      dryRun: true,
    });
    expect(plan).toMatchObject({ dryRun: true, recipientCount: 2_500, enqueued: false });
    expect(plan.batchIds).toHaveLength(3);
    expect(await env.db.prisma.campaign.count()).toBe(before);
  });

  it("refuses to launch a legacy campaign when the template is missing, not approved or a variable has no value, listing what is missing", async () => {
    const file = await env.writeCsv("pf.csv", csvOf(["phone", "first_name"], [["+6581230000", "Ann"]]));
    // The template API is the legacy platform's (docs/engagelab-apis.md#template-api): legacy campaigns only.
    const input = { ...base, provider: "legacy" as const, file, phoneColumn: "phone" };
    const before = await env.db.prisma.campaign.count();
    await expect(launchCsvCampaign(deps, { ...input, templateId: "1" })).rejects.toThrow(/order/);
    const created = await templates.api.create({
      name: "promo-" + Date.now(),
      content: "Hi %name%, %promotion% off at %shop%",
      type: 2,
    });
    const pending = launchCsvCampaign(deps, {
      ...input,
      templateId: created.templateId,
      paramColumns: { name: "first_name" },
    });
    await expect(pending).rejects.toThrow(TemplatePreflightError);
    await fetch(`${env.sandbox.url}/_sandbox/templates/${created.templateId}/approval`, {
      method: "POST",
      body: JSON.stringify({ approval_status: 1 }),
    });
    const error = await launchCsvCampaign(deps, {
      ...input,
      templateId: created.templateId,
      paramColumns: { name: "first_name" },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TemplatePreflightError);
    expect((error as TemplatePreflightError).missingVariables).toEqual(["promotion", "shop"]);
    await expect(launchCsvCampaign(deps, { ...input, templateId: "99999" })).rejects.toThrow(/does not exist/);
    expect(await env.db.prisma.campaign.count()).toBe(before);
    const ok = await launchCsvCampaign(deps, {
      ...input,
      templateId: created.templateId,
      params: { promotion: "30%", shop: "Orchard" },
      paramColumns: { name: "first_name" },
    });
    expect(ok.recipientCount).toBe(1);
  });

  it("runs a campaign from a database audience (tag or saved segment) with attributes as params", async () => {
    const rows = singaporeNumbers(30, 700_000).map((n, i) => [
      n,
      `N${i}`,
      i % 2 ? "vip;sg" : "sg",
      i < 10 ? "Jurong" : "Bedok",
    ]);
    rows.push(["not-a-phone", "X", "sg", "Bedok"]);
    const file = await env.writeCsv("contacts.csv", csvOf(["Phone", "first_name", "tags", "city"], rows));
    const report = await importContactsFromCsv(env.db, file, { phoneColumn: "phone", tags: ["imported"] });
    expect(report).toMatchObject({ rows: 31, inserted: 30, updated: 0 });
    expect(report.rejects).toHaveLength(1);
    const again = await importContactsFromCsv(env.db, file, { phoneColumn: "phone", tags: [] });
    expect(again).toMatchObject({ inserted: 0, updated: 30 });
    const contact = await env.db.prisma.contact.findUniqueOrThrow({ where: { phone: rows[1]![0] } });
    expect(contact.tags).toEqual(["imported", "sg", "vip"]);
    expect(contact.attributes).toEqual({ first_name: "N1", city: "Jurong" });

    await addSuppressions(env.db, [rows[3]![0]!], "opt-out", "test"); // a VIP who opted out
    await saveSegment(env.db, { name: "jurong-vips", tags: ["vip"], attributes: { city: "Jurong" } });
    const launchDeps = { ...deps, enqueue: (await import("./helpers/campaign-runner.ts")).enqueueFor(env) };
    const campaign = await launchAudienceCampaign(launchDeps, {
      ...base,
      audience: "jurong-vips",
      templateId: "1",
      params: { order: "V" },
      paramColumns: { name: "first_name" },
    });
    expect(campaign).toMatchObject({ totalRows: 5, recipientCount: 4, suppressedCount: 0, rejectedCount: 1 }); // opted out
    expect(campaign.batchIds).toHaveLength(4); // every VIP has their own name
    const worker = await startWorker(env);
    try {
      const done = await waitForCampaignEnd(env, campaign.campaignId);
      expect(done.recipients.accepted).toBe(4);
    } finally {
      await worker.stop();
    }
    // Earlier tests' campaigns share this queue; look only at the contacts' numbers.
    const contactNumbers = new Set(rows.map((r) => r[0]));
    const received = Object.keys(await sandboxLedger(env)).filter((n) => contactNumbers.has(n));
    expect(received.sort()).toEqual([rows[1]![0], rows[5]![0], rows[7]![0], rows[9]![0]].sort());

    const byTag = await launchAudienceCampaign(deps, {
      ...base,
      audience: "vip",
      templateId: "1",
      params: { order: "V" },
      dryRun: true,
    });
    expect(byTag.recipientCount).toBe(14); // 15 VIPs, one opted out
    await expect(
      launchAudienceCampaign(deps, { ...base, audience: "nobody", templateId: "1", params: { order: "V" } }),
    ).rejects.toThrow(AudienceError);
  });

  it("merges a number listed twice in one contacts file", async () => {
    const file = await env.writeCsv(
      "dup-contacts.csv",
      csvOf(
        ["phone", "first_name", "city", "tags"],
        [
          ["+6581777001", "Ann", "SG", "vip"],
          ["+65 8177 7001", "Anna", "", "news"],
        ],
      ),
    );
    const report = await importContactsFromCsv(env.db, file, { phoneColumn: "phone", tags: [] });
    expect(report).toMatchObject({ rows: 2, inserted: 1 });
    const contact = await env.db.prisma.contact.findUniqueOrThrow({ where: { phone: "+6581777001" } });
    expect(contact.attributes).toEqual({ first_name: "Anna", city: "SG" });
    expect(contact.tags).toEqual(["news", "vip"]);
  });

  it("exports rejects as formula-injection-safe CSV", async () => {
    const file = await env.writeCsv(
      "inj.csv",
      csvOf(
        ["name", "phone"],
        [
          ["a", "=HYPERLINK(1)"],
          ["b", "+6581239999"],
          ["c", "@SUM(1)"],
          ["d", "-12"],
        ],
      ),
    );
    const campaign = await launchCampaign(env, { file });
    const out = new PassThrough();
    let text = "";
    out.on("data", (c: Buffer) => (text += c.toString()));
    expect(await exportRejects(env.db, campaign.campaignId, out)).toBe(3);
    const lines = text.trim().split("\n");
    expect(lines[0]).toBe("row,value,reason");
    expect(lines[1]).toMatch(/^2,'=HYPERLINK\(1\),/);
    expect(lines[2]).toMatch(/^4,'@SUM\(1\),/);
    // A plain number is not a formula: escaping it would break re-importing the file.
    expect(lines[3]).toMatch(/^5,-12,/);
  });
});
