import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { launchCsvCampaign, type CsvCampaignInput, type LaunchDeps } from "../src/campaigns/launch-campaign.ts";
import { TemplatePreflightError } from "../src/campaigns/template-preflight.ts";
import { createTemplatesApi } from "../src/engagelab/templates-api.ts";
import { cliEnv, runCli } from "./helpers/cli.ts";
import { enqueueFor, sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";
import { csvOf, createTestEnv, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";

// The template API (seed 003) is the legacy platform's: it checks legacy campaigns only. A v1/messages template
// id is a string on another platform and is never looked up there (docs/engagelab-apis.md#template-api).
describe("template pre-flight on the template's own platform", () => {
  let env: TestEnv;
  let templates: ReturnType<typeof createTemplatesApi>;
  let deps: LaunchDeps;
  beforeAll(async () => {
    // The legacy template store starts empty: any messages launch that asked it would be refused.
    env = await createTestEnv("tpl_platforms", { sandbox: { legacyTemplates: [] } });
    templates = createTemplatesApi(env.config);
    deps = { db: env.db, log: env.log, enqueue: enqueueFor(env), templates: templates.api };
  });
  afterAll(async () => {
    await templates?.close();
    await env?.cleanup();
  });
  beforeEach(async () => {
    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
  });

  const counts = async () => ({
    campaigns: await env.db.prisma.campaign.count(),
    recipients: await env.db.prisma.recipient.count(),
    batches: await env.db.prisma.batch.count(),
  });
  const input = (file: string, extra: Partial<CsvCampaignInput>): CsvCampaignInput => ({
    name: "t",
    file,
    templateId: "promo-winter",
    params: {},
    phoneColumn: "phone",
    provider: "messages",
    onUnknown: "at_most_once",
    batchSize: 1000,
    ...extra,
  });
  const listOf = (name: string, numbers: string[]) =>
    env.writeCsv(
      name,
      csvOf(
        ["phone", "name"],
        numbers.map((n, i) => [n, `N${i}`]),
      ),
    );

  it('a messages campaign with template "promo-winter" launches and sends; the legacy template API is not asked', async () => {
    const numbers = singaporeNumbers(40, 10_000);
    const launched = await launchCsvCampaign(
      deps,
      input(await listOf("promo.csv", numbers), {
        paramColumns: { name: "name" },
        templateContent: "Hi {{name}}, winter deals at {{brand_name}}",
      }),
    );
    expect(launched.templateCheck).toMatchObject({
      templateId: "promo-winter",
      approvalChecked: false,
      variablesChecked: true,
    });
    expect(launched.templateCheck!.notChecked).toEqual([
      expect.stringMatching(/whether template promo-winter exists and is approved: .*current SMS platform/),
    ]);
    const worker = await startWorker(env);
    try {
      expect(await waitForCampaignEnd(env, launched.campaignId)).toMatchObject({
        status: "completed",
        recipients: { accepted: 40 },
      });
    } finally {
      await worker.stop();
    }
    const ledger = await sandboxLedger(env, "messages");
    expect(Object.keys(ledger).sort()).toEqual([...numbers].sort());
    expect(env.sandbox.ledger.stats().requests.templates).toBe(0);
  });

  it("a {{var}} of the given template text without a value refuses the launch before anything is stored", async () => {
    const before = await counts();
    const error = await launchCsvCampaign(
      deps,
      input(await listOf("vars.csv", singaporeNumbers(3, 11_000)), {
        params: { season: "winter" },
        templateContent: "Hi {{name}}, {{season}} deals until {{until}}",
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TemplatePreflightError);
    expect((error as TemplatePreflightError).missingVariables).toEqual(["name", "until"]);
    expect(await counts()).toEqual(before);
  });

  it("a legacy campaign with an unapproved template is refused before anything is stored", async () => {
    const created = await templates.api.create({ name: `legacy-${Date.now()}`, content: "Hi %name%", type: 1 });
    await templates.api.submit(created.templateId); // pending review: approval_status 0
    const before = await counts();
    const error = await launchCsvCampaign(
      deps,
      input(await listOf("legacy.csv", singaporeNumbers(5, 12_000)), {
        provider: "legacy",
        templateId: created.templateId,
        paramColumns: { name: "name" },
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TemplatePreflightError);
    expect((error as Error).message).toMatch(new RegExp(`template ${created.templateId} is pending review`));
    expect(await counts()).toEqual(before);
    expect(env.sandbox.ledger.stats().requests.templates).toBeGreaterThan(0);
    expect(await sandboxLedger(env)).toEqual({});
  });

  it("the sandbox refuses what the pre-flight could not see: a legacy id not in its store, a messages id it was told is gone", async () => {
    env.sandbox.markMessagesTemplatesMissing(["retired-promo"]);
    const legacy = await launchCsvCampaign(
      deps,
      input(await listOf("l.csv", singaporeNumbers(5, 13_000)), {
        provider: "legacy",
        templateId: "4242",
        templateCheck: false,
      }),
    );
    const messages = await launchCsvCampaign(
      deps,
      input(await listOf("m.csv", singaporeNumbers(5, 14_000)), { templateId: "retired-promo" }),
    );
    const worker = await startWorker(env);
    try {
      for (const c of [legacy, messages])
        expect(await waitForCampaignEnd(env, c.campaignId)).toMatchObject({ status: "failed" });
    } finally {
      await worker.stop();
    }
    const batch = async (campaignId: string) =>
      (await env.db.prisma.batch.findFirstOrThrow({ where: { campaignId } })) as {
        state: string;
        errorCode: number | null;
        errorMessage: string | null;
      };
    expect(await batch(legacy.campaignId)).toMatchObject({
      state: "failed",
      errorCode: 33001,
      errorMessage: "The template does not exist",
    });
    expect(await batch(messages.campaignId)).toMatchObject({ state: "failed", errorCode: 4001 });
    expect(await sandboxLedger(env)).toEqual({});
  });

  it("`smsblast send` says plainly that a messages template's approval is not checked", async () => {
    const numbers = singaporeNumbers(3, 15_000);
    const file = await listOf("cli.csv", numbers);
    const run = await runCli(
      ["send", file, "--template", "promo-winter", "--map", "name=name", "--wait", "--worker"],
      cliEnv(env),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(
      /template promo-winter: NOT checked: whether template promo-winter exists and is approved: messages templates live on the EngageLab current SMS platform/,
    );
    expect(run.stderr).toMatch(/give --template-content <text> to check its variables/);
    expect(Object.keys(await sandboxLedger(env)).sort()).toEqual([...numbers].sort());
    expect(env.sandbox.ledger.stats().requests.templates).toBe(0);
  });
});
