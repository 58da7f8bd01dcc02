import { readFile } from "node:fs/promises";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { suppressNumbers } from "../../src/recipients/audience-lists.ts";
import { createTemplatesApi } from "../../src/engagelab/templates-api.ts";
import { startSendWorker, type RunningSendWorker } from "../../src/runtime/send-worker-runtime.ts";
import { screenshot } from "../helpers/browser.ts";
import {
  expectNoHorizontalScroll,
  seriousA11yViolations,
  startConsoleTest,
  type ConsoleTestServer,
} from "../helpers/console.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// The issue's list: 2,000 rows with 5 invalid numbers, 3 duplicates and 2 suppressed ones, at known rows.
const INVALID_ROWS = [3, 250, 999, 1500, 2000];
const DUPLICATE_ROWS = new Map([
  [10, 1],
  [11, 2],
  [12, 4],
]); // row → the earlier row whose number it repeats
const SUPPRESSED_ROWS = [20, 21];
const NAMES = ["Ana", "Ben", "Chen", "Dev", "Eli", "Farah", "Gus", "Hana", "Ivan", "Jo"];

function issueList(): { csv: string; sendable: string[]; numbers: string[] } {
  const numbers = singaporeNumbers(2000, 100_000);
  const rows: string[][] = [];
  for (let row = 1; row <= 2000; row++) {
    let phone = numbers[row - 1]!;
    if (INVALID_ROWS.includes(row)) phone = `12${row}`;
    const earlier = DUPLICATE_ROWS.get(row);
    if (earlier !== undefined) phone = numbers[earlier - 1]!.replace("+65", "+65 ");
    // Ten names: personalised, yet few distinct params, so the batches stay few (one request per set of params).
    rows.push([phone, NAMES[row % NAMES.length]!]);
  }
  const sendable = rows
    .map(([phone], i) => ({ phone: phone!, row: i + 1 }))
    .filter(({ row }) => !INVALID_ROWS.includes(row) && !DUPLICATE_ROWS.has(row) && !SUPPRESSED_ROWS.includes(row))
    .map(({ phone }) => phone);
  return { csv: csvOf(["phone", "name"], rows), sendable, numbers };
}

describe("console: a new campaign from an upload, in a real browser", () => {
  let env: TestEnv;
  let web: ConsoleTestServer;
  let worker: RunningSendWorker;
  let templateId: string;

  beforeAll(async () => {
    env = await createTestEnv("console_flow", { env: { BATCH_SIZE: "50" } });
    web = await startConsoleTest(env);
    worker = await startSendWorker(env.config, env.log);
    const { api, close } = createTemplatesApi(env.config);
    const template = await api.create({ name: "parcel", content: "Hi {{name}}, your parcel is on its way.", type: 0 });
    await close();
    templateId = template.templateId;
    const approved = await fetch(`${env.sandbox.url}/_sandbox/templates/${templateId}/approval`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ approval_status: 1 }),
    });
    expect(approved.status).toBe(200);
  });
  afterAll(async () => {
    await worker?.stop();
    await web?.close();
    await env?.cleanup();
  });

  async function expectAccessible(page: Page, name: string): Promise<void> {
    expect(await seriousA11yViolations(page), name).toEqual([]);
    await screenshot(page, name);
  }

  /** Steps 1 and 2: choose the template, upload the file; lands on the column mapping. */
  async function upload(page: Page, file: string): Promise<void> {
    await page.getByRole("link", { name: "New campaign" }).first().click();
    await page.waitForURL(/\/campaigns\/new$/);
    await page.getByLabel("Template", { exact: true }).selectOption(templateId);
    await page.getByLabel("CSV file").setInputFiles(file);
    await page.getByRole("button", { name: "Upload and continue" }).click();
    await page.waitForURL(/\/uploads\/[\w-]+\/map/);
  }

  it("sign in, upload 2,000 rows, check, preview row 7, send, watch it complete, download the report", async () => {
    const { sendable, csv, numbers } = issueList();
    await suppressNumbers(env.db, {
      phones: SUPPRESSED_ROWS.map((row) => numbers[row - 1]!),
      reason: "test",
      source: "test",
    });
    const file = await env.writeCsv("issue-list.csv", csv);
    const { context, page } = await web.signedIn(web.tokens.operator);
    await page.getByRole("link", { name: "New campaign" }).first().click();
    await expectAccessible(page, "1-new-campaign");
    await upload(page, file);

    // Mapping: the phone column pre-selected, the template's variable pre-matched by name.
    expect(await page.getByLabel("Phone number column").inputValue()).toBe("phone");
    expect(await page.getByLabel("name: from column").inputValue()).toBe("name");
    await expectAccessible(page, "2-columns");
    await page.getByRole("button", { name: "Check the list" }).click();
    await page.waitForURL(/\/check$/);

    const countOf = async (key: string) => page.locator(`[data-count="${key}"]`).textContent();
    expect(await countOf("rows")).toBe("2,000");
    expect(await countOf("valid")).toBe("1,990");
    expect(await countOf("invalid")).toBe("5");
    expect(await countOf("duplicates")).toBe("3");
    expect(await countOf("suppressed")).toBe("2");
    const badRows = await page.locator("#row-errors tbody tr td:first-child").allTextContents();
    expect(badRows.map(Number)).toEqual([...INVALID_ROWS, ...SUPPRESSED_ROWS].sort((a, b) => a - b));
    await expectAccessible(page, "3-check");
    const rejectsDownload = page.waitForEvent("download");
    await page.getByRole("link", { name: "Download every rejected row (CSV)" }).click();
    const uploadRejects = await readFile(await (await rejectsDownload).path(), "utf8");
    expect(uploadRejects.trim().split("\n")).toHaveLength(1 + 7);

    await page.getByRole("link", { name: "Continue" }).click();
    await page.waitForURL(/\/preview/);
    await page.getByLabel("Show the message of row number").fill("7");
    await page.getByRole("button", { name: "Show" }).click();
    await expect.poll(() => page.locator("#preview-text").textContent()).toBe("Hi Hana, your parcel is on its way.");
    expect(await page.locator("#preview-measure").textContent()).toMatch(/35 characters · GSM-7 · 1\s+SMS\s+segment\b/);
    await expectAccessible(page, "4-preview");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL(/\/confirm/);
    const send = page.getByRole("button", { name: "Send 1,990 messages now" });
    expect(await send.count()).toBe(1);
    await expectAccessible(page, "5-confirm");
    await send.click();
    await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
    const campaignId = new URL(page.url()).pathname.split("/").pop()!;

    // Live: the page reaches "completed" by itself (the marker survives: no reload happened).
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    await page.locator("#status .chip-completed").waitFor({ timeout: 60_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await expect.poll(() => page.locator('[data-count="accepted"]').textContent()).toBe("1,990");
    expect(await page.getByRole("button", { name: "Pause" }).count()).toBe(0);
    await expectAccessible(page, "6-campaign-completed");

    const reportDownload = page.waitForEvent("download");
    await page.getByRole("link", { name: "Every recipient's outcome (CSV)" }).click();
    const report = await readFile(await (await reportDownload).path(), "utf8");
    expect(report.trim().split("\n")).toHaveLength(1 + 1990);
    const rejectDownload = page.waitForEvent("download");
    await page.getByRole("link", { name: "Rejected rows (CSV)" }).click();
    const rejects = await readFile(await (await rejectDownload).path(), "utf8");
    // Invalid and suppressed rows; duplicates are counted and skipped, not rejects (as in `smsblast rejects`).
    expect(rejects.trim().split("\n")).toHaveLength(1 + 7);

    const ledger = (await (await fetch(`${env.sandbox.url}/_sandbox/sent`)).json()) as Record<string, number>;
    expect(Object.keys(ledger).sort()).toEqual([...sendable].sort());
    expect(Object.values(ledger).every((times) => times === 1)).toBe(true);

    // A phone's width: no horizontal scrolling on the campaign page, the check and the first step.
    const phone = await web.signedIn(web.tokens.operator, { width: 375 });
    for (const path of [`/campaigns/${campaignId}`, "/campaigns/new", "/campaigns"]) {
      await phone.page.goto(`${web.server.url}${path}`);
      await expectNoHorizontalScroll(phone.page);
    }
    await screenshot(phone.page, "campaigns-phone");
    await phone.context.close();
    await context.close();
  });
});
