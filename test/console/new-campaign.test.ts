import { readFile, writeFile } from "node:fs/promises";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { suppressNumbers } from "../../src/recipients/audience-lists.ts";
import { createTemplatesApi } from "../../src/engagelab/templates-api.ts";
import { startSendWorker, type RunningSendWorker } from "../../src/runtime/send-worker-runtime.ts";
import { startDeliveryWorker, type RunningDeliveryWorker } from "../../src/runtime/delivery-worker-runtime.ts";
import { screenshot } from "../helpers/browser.ts";
import {
  expectNoHorizontalScroll,
  seriousA11yViolations,
  startConsoleTest,
  type ConsoleTestServer,
} from "../helpers/console.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// The issue's list: 2,000 rows with 5 invalid numbers, 3 duplicates and 2 suppressed ones, at known rows.
// Row numbers are the spreadsheet's, as every report gives them: the header is row 1, data rows 2 to 2001.
const INVALID_ROWS = [4, 251, 1000, 1501, 2001];
const DUPLICATE_ROWS = new Map([
  [11, 2],
  [12, 3],
  [13, 5],
]); // row → the earlier row whose number it repeats
const SUPPRESSED_ROWS = [21, 22];
const CALLBACK = { username: "cb-user", secret: "cb-secret-for-console-tests" };
const NAMES = ["Ana", "Ben", "Chen", "Dev", "Eli", "Farah", "Gus", "Hana", "Ivan", "Jo"];

function issueList(): { csv: string; sendable: string[]; numbers: Map<number, string> } {
  const numbers = new Map(singaporeNumbers(2000, 100_000).map((p, i) => [i + 2, p]));
  const rows: string[][] = [];
  for (let row = 2; row <= 2001; row++) {
    let phone = numbers.get(row)!;
    if (INVALID_ROWS.includes(row)) phone = `12${row}`;
    const earlier = DUPLICATE_ROWS.get(row);
    if (earlier !== undefined) phone = numbers.get(earlier)!.replace("+65", "+65 ");
    // Ten names: personalised, yet few distinct params, so the batches stay few (one request per set of params).
    rows.push([phone, NAMES[row % NAMES.length]!]);
  }
  const sendable = rows
    .map(([phone], i) => ({ phone: phone!, row: i + 2 }))
    .filter(({ row }) => !INVALID_ROWS.includes(row) && !DUPLICATE_ROWS.has(row) && !SUPPRESSED_ROWS.includes(row))
    .map(({ phone }) => phone);
  return { csv: csvOf(["phone", "name"], rows), sendable, numbers };
}

describe("console: a new campaign from an upload, in a real browser", () => {
  let env: TestEnv;
  let web: ConsoleTestServer;
  let worker: RunningSendWorker;
  let applier: RunningDeliveryWorker;
  let templateId: string;

  beforeAll(async () => {
    env = await createTestEnv("console_flow", {
      env: { BATCH_SIZE: "50", CALLBACK_USERNAME: CALLBACK.username, CALLBACK_SECRET: CALLBACK.secret },
    });
    web = await startConsoleTest(env);
    worker = await startSendWorker(env.config, env.log);
    applier = await startDeliveryWorker(env.config, env.log);
    const { api, close } = createTemplatesApi(env.config);
    const template = await api.create({ name: "parcel", content: "Hi %name%, your parcel is on its way.", type: 0 });
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
    await applier?.stop();
    await worker?.stop();
    await web?.close();
    await env?.cleanup();
  });

  /** No serious or critical axe violation, a screenshot, and nothing wider than a phone at 375 px. */
  async function expectAccessible(page: Page, name: string): Promise<void> {
    expect(await seriousA11yViolations(page), name).toEqual([]);
    await screenshot(page, name);
    const size = page.viewportSize();
    await page.setViewportSize({ width: 375, height: 800 });
    await expectNoHorizontalScroll(page);
    if (size) await page.setViewportSize(size);
  }

  /** Steps 1 and 2: choose the template, upload the file; lands on the column mapping. */
  async function upload(page: Page, file: string): Promise<void> {
    await page.getByRole("link", { name: "New campaign" }).first().click();
    await page.waitForURL(/\/campaigns\/new$/);
    // Listed templates are legacy SMS API templates (the page's script also switches the provider).
    await page.getByLabel("Provider API").selectOption("legacy");
    await page.getByLabel("Legacy SMS API template").selectOption(templateId);
    await page.getByLabel("CSV file").setInputFiles(file);
    await page.getByRole("button", { name: "Upload and continue" }).click();
    await page.waitForURL(/\/uploads\/[\w-]+\/map/);
  }

  it("sign in, upload 2,000 rows, check, preview row 7, send, watch it complete, download the report", async () => {
    const { sendable, csv, numbers } = issueList();
    await suppressNumbers(env.db, {
      phones: SUPPRESSED_ROWS.map((row) => numbers.get(row)!),
      reason: "test",
      source: "test",
    });
    const file = await env.writeCsv("issue-list.csv", csv);
    // The sandbox reports deliveries like EngageLab: 90 % delivered, the rest undelivered.
    env.sandbox.setOptions({
      callbacks: {
        url: `${web.server.url}/callbacks/engagelab`,
        ...CALLBACK,
        deliveredRate: 0.9,
        neverReportedRate: 0,
        duplicateRate: 0,
        outOfOrderRate: 0,
        delayMs: 20,
        jitterMs: 100,
      },
    });
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
    expect(badRows.map(Number)).toEqual(
      [...INVALID_ROWS, ...DUPLICATE_ROWS.keys(), ...SUPPRESSED_ROWS].sort((a, b) => a - b),
    );
    expect(await page.locator("#row-errors tbody tr", { hasText: "duplicate of row 2" }).count()).toBe(1);
    await expectAccessible(page, "3-check");
    const rejectsDownload = page.waitForEvent("download");
    await page.getByRole("link", { name: "Download every rejected row (CSV)" }).click();
    const uploadRejects = await readFile(await (await rejectsDownload).path(), "utf8");
    expect(uploadRejects.trim().split("\n")).toHaveLength(1 + 10);

    await page.getByRole("link", { name: "Continue" }).click();
    await page.waitForURL(/\/preview/);
    await page.getByLabel("Show the message of row number").fill("7");
    await page.getByRole("button", { name: "Show" }).click();
    await expect
      .poll(() => page.locator("#preview-text").textContent(), { timeout: 15_000 })
      .toBe("Hi Hana, your parcel is on its way.");
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

    // Delivery reports keep arriving after the last batch: the page shows them, grouped by reason.
    const reported = async () =>
      Number(
        (
          await env.db.pool.query<{ n: string }>(
            "SELECT count(*) AS n FROM recipients WHERE campaign_id = $1 AND state IN ('delivered', 'undelivered')",
            [campaignId],
          )
        ).rows[0]!.n,
      );
    await expect.poll(reported, { timeout: 30_000 }).toBe(1990);
    env.sandbox.setOptions({ callbacks: undefined });
    await page.reload();
    const delivered = Number((await page.locator('[data-count="delivered"]').textContent())!.replace(/,/g, ""));
    const undelivered = Number((await page.locator('[data-count="undelivered"]').textContent())!.replace(/,/g, ""));
    expect(delivered + undelivered).toBe(1990);
    expect(undelivered).toBeGreaterThan(0);
    expect(await page.locator('[data-count="awaiting"]').textContent()).toBe("0");
    const reasons = await page.locator("#failures tbody tr td:first-child").allTextContents();
    expect(reasons).toEqual(["not delivered to the handset"]);
    expect(await page.locator("#failures tbody tr td:last-child").textContent()).toBe(String(undelivered));
    await expectAccessible(page, "6b-campaign-delivery-reports");

    const reportDownload = page.waitForEvent("download");
    await page.getByRole("link", { name: "Every recipient's outcome (CSV)" }).click();
    const report = await readFile(await (await reportDownload).path(), "utf8");
    expect(report.trim().split("\n")).toHaveLength(1 + 1990);
    const rejectDownload = page.waitForEvent("download");
    await page.getByRole("link", { name: "Rejected rows (CSV)" }).click();
    const rejects = await readFile(await (await rejectDownload).path(), "utf8");
    // Invalid, duplicate and suppressed rows.
    expect(rejects.trim().split("\n")).toHaveLength(1 + 10);

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
  }, 180_000); // the longest browser flow: 2,000 rows through upload, check, send and delivery reports

  /** A small list of fresh numbers (the repeat guard refuses the same list twice within 24 h). */
  async function smallList(name: string, rows: number, start: number): Promise<string> {
    return env.writeCsv(
      name,
      csvOf(
        ["Mobile", "Name"],
        singaporeNumbers(rows, start).map((p, i) => [p, NAMES[i % NAMES.length]!]),
      ),
    );
  }

  /** From the mapping to the confirm page with the defaults: check, continue, continue. */
  async function toConfirm(page: Page): Promise<void> {
    await page.getByRole("button", { name: "Check the list" }).click();
    await page.waitForURL(/\/check$/);
    await page.getByRole("link", { name: "Continue" }).click();
    await page.waitForURL(/\/preview/);
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL(/\/confirm/);
  }

  const campaignCount = async () =>
    Number((await env.db.pool.query<{ n: string }>("SELECT count(*) AS n FROM campaigns")).rows[0]!.n);

  it("a double click on the send button, or the form sent twice at once, creates one campaign", async () => {
    const { context, page } = await web.signedIn(web.tokens.operator);
    // This page has no EventSource: the campaign page falls back to polling.
    await context.addInitScript(() => {
      delete (window as { EventSource?: unknown }).EventSource;
    });
    const streams: string[] = [];
    page.on("request", (r) => r.url().endsWith("/events") && streams.push(r.url()));
    await upload(page, await smallList("double-click.csv", 20, 300_000));
    await toConfirm(page);
    const before = await campaignCount();
    await page.getByRole("button", { name: "Send 20 messages now" }).dblclick();
    await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
    expect(await campaignCount()).toBe(before + 1);
    await page.locator("#status .chip-completed").waitFor({ timeout: 30_000 });
    expect(streams).toEqual([]);

    // Without the page's script: the same form (one Idempotency-Key) posted twice at once.
    await upload(page, await smallList("twice.csv", 20, 310_000));
    await toConfirm(page);
    const landed = await page.evaluate(async () => {
      const form = document.querySelector<HTMLFormElement>('form[action$="/launch"]')!;
      const post = () =>
        fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form) as never) }).then(
          (r) => r.url,
        );
      return Promise.all([post(), post()]);
    });
    expect(landed[0]).toMatch(/\/campaigns\/[0-9a-f-]{36}$/);
    expect(landed[1]).toBe(landed[0]);
    expect(await campaignCount()).toBe(before + 2);
    // A reload of the confirm page after the launch leads to the campaign, not to a second one.
    await page.reload();
    expect(page.url()).toBe(landed[0]);
    expect(await campaignCount()).toBe(before + 2);
    await context.close();
  });

  it("a CSV without a phone column shows the file-level message and no row table", async () => {
    const { context, page } = await web.signedIn(web.tokens.operator);
    const file = await env.writeCsv(
      "no-phone.csv",
      csvOf(
        ["name", "city"],
        NAMES.map((n) => [n, "Singapore"]),
      ),
    );
    await upload(page, file);
    await expect(page.locator("#file-problem").textContent()).resolves.toBe("No phone column.");
    expect(await page.getByLabel("Phone number column").inputValue()).toBe("");
    await expectAccessible(page, "no-phone-columns");
    // Choosing a column anyway: the check says so at file level, with no counts and no row table.
    await page.getByLabel("Phone number column").selectOption("city");
    await page.getByRole("button", { name: "Check the list" }).click();
    await page.waitForURL(/\/check$/);
    await expect(page.locator("#file-problems").textContent()).resolves.toContain("No row has a number");
    expect(await page.locator("#row-errors").count()).toBe(0);
    expect(await page.locator("#check-counts").count()).toBe(0);
    await expectAccessible(page, "no-phone-check");
    await context.close();
  });

  it("the whole new-campaign flow works with the keyboard alone", async () => {
    const { context, page } = await web.signedIn(web.tokens.operator);
    const file = await smallList("keyboard.csv", 30, 320_000);
    /** Tab until the focused element matches, then return; fails after 80 presses. */
    const tabTo = async (matches: (el: { tag: string; name: string; text: string; label: string }) => boolean) => {
      for (let i = 0; i < 80; i++) {
        await page.keyboard.press("Tab");
        const el = await page.evaluate(() => {
          const a = document.activeElement as HTMLElement & { name?: string; labels?: NodeListOf<HTMLLabelElement> };
          return {
            tag: a.tagName.toLowerCase(),
            name: a.name ?? "",
            text: (a.textContent ?? "").trim(),
            label: a.labels?.[0]?.textContent?.trim() ?? "",
          };
        });
        if (matches(el)) return;
      }
      throw new Error("no element matched within 80 Tab presses");
    };
    await tabTo((el) => el.tag === "a" && el.text === "New campaign");
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/campaigns\/new$/);
    await tabTo((el) => el.name === "templateIdTyped");
    await page.keyboard.type(templateId);
    await tabTo((el) => el.name === "file");
    const chooser = page.waitForEvent("filechooser");
    await page.keyboard.press("Space");
    await (await chooser).setFiles(file);
    await tabTo((el) => el.text === "Upload and continue");
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/map/);
    await tabTo((el) => el.text === "Check the list");
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/check$/);
    await tabTo((el) => el.tag === "a" && el.text === "Continue");
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/preview/);
    await tabTo((el) => el.tag === "button" && el.text === "Continue");
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/confirm/);
    await tabTo((el) => el.text === "Send 30 messages now");
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
    await page.locator("#status .chip-completed").waitFor({ timeout: 30_000 });
    await context.close();
  });

  it("pause, then resume, while a slow sandbox is sending: the counts stop moving, then finish", async () => {
    const knobs = (latencyMs: number) =>
      fetch(`${env.sandbox.url}/_sandbox/config`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ latencyMs }),
      });
    const { context, page } = await web.signedIn(web.tokens.operator);
    await upload(page, await smallList("slow.csv", 600, 330_000));
    await toConfirm(page);
    expect((await knobs(1_500)).status).toBe(200);
    try {
      await page.getByRole("button", { name: "Send 600 messages now" }).click();
      await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
      const accepted = async () =>
        Number((await page.locator('[data-count="accepted"]').textContent())!.replace(/,/g, ""));
      await expect.poll(accepted, { timeout: 15_000 }).toBeGreaterThan(0);
      await page.getByRole("button", { name: "Pause" }).click();
      await page.locator("#status .chip-paused").waitFor();
      expect(await page.getByRole("button", { name: "Resume" }).count()).toBe(1);
      await screenshot(page, "campaign-paused");
      // Batches already in flight finish (at most one latency); after that nothing moves.
      await new Promise((resolve) => setTimeout(resolve, 3_500));
      const held = await accepted();
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(await accepted()).toBe(held);
      expect(held).toBeLessThan(600);
      await knobs(0);
      await page.getByRole("button", { name: "Resume" }).click();
      await page.locator("#status .chip-completed").waitFor({ timeout: 30_000 });
      await expect.poll(accepted).toBe(600);
    } finally {
      await knobs(0);
    }
    await context.close();
  });

  it("sample CSV, a wrong encoding, a variable without a column, and a later start in a named time zone", async () => {
    const { context, page } = await web.signedIn(web.tokens.operator);
    await page.goto(`${web.server.url}/campaigns/new`);
    await page.getByLabel("Legacy SMS API template").selectOption(templateId);
    expect(await page.getByLabel("Provider API").inputValue()).toBe("legacy");
    const sample = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download a sample CSV" }).click();
    const sampleCsv = await readFile(await (await sample).path(), "utf8");
    expect(sampleCsv.split("\r\n")[0]).toBe("phone,name");

    // Latin-1 bytes are not UTF-8: the file is refused at file level, next to the file field.
    const latin1 = await env.writeCsv("latin1.csv", "");
    await writeFile(latin1, Buffer.from("phone,name\n+6581000001,Ren\xe9\n", "latin1"));
    await page.getByLabel("CSV file").setInputFiles(latin1);
    await page.getByRole("button", { name: "Upload and continue" }).click();
    await expect(page.locator("#file-error").textContent()).resolves.toMatch(/UTF-8/);
    expect(await page.locator("#row-errors").count()).toBe(0);

    // A template variable with neither a column nor a value: a file-level problem, no counts.
    await upload(page, await smallList("no-name.csv", 5, 340_000));
    await page.getByLabel("name: from column").selectOption("");
    await page.getByRole("button", { name: "Check the list" }).click();
    await expect(page.locator("#file-problems").textContent()).resolves.toContain("name");
    expect(await page.locator("#check-counts").count()).toBe(0);

    // Later: 09:00 tomorrow in Singapore (UTC+8, no daylight saving) is 01:00 UTC.
    await page.getByRole("link", { name: "Change the columns" }).click();
    await page.getByRole("button", { name: "Check the list" }).click();
    await page.getByRole("link", { name: "Continue" }).click();
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    await page.getByLabel("At a date and time").check();
    await page.getByLabel("Date", { exact: true }).fill(tomorrow);
    await page.getByLabel("Time", { exact: true }).fill("09:00");
    await page.getByLabel("Time zone").selectOption("Asia/Singapore");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByRole("button", { name: `Schedule 5 messages for ${tomorrow} 09:00 (Asia/Singapore)` }).click();
    await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
    await page.locator("#status .chip-scheduled").waitFor();
    const id = new URL(page.url()).pathname.split("/").pop()!;
    const stored = await env.db.pool.query<{ scheduled_at: Date }>("SELECT scheduled_at FROM campaigns WHERE id = $1", [
      id,
    ]);
    expect(stored.rows[0]!.scheduled_at.toISOString()).toBe(`${tomorrow}T01:00:00.000Z`);
    expect(await page.getByRole("link", { name: "Cancel…" }).count()).toBe(1);
    await page.getByRole("link", { name: "Cancel…" }).click();
    await page.getByRole("button", { name: "Yes, cancel the campaign" }).click();
    await page.locator("#status .chip-cancelled").waitFor();
    await context.close();
  });

  it("works without JavaScript: the multipart upload, the preview form, the confirm button", async () => {
    const context = await web.browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${web.server.url}/sign-in`);
    await page.getByLabel("API token").fill(web.tokens.operator);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/campaigns$/);
    await upload(page, await smallList("no-script.csv", 12, 350_000));
    await page.getByRole("button", { name: "Check the list" }).click();
    await page.waitForURL(/\/check$/);
    expect(await page.locator('[data-count="valid"]').textContent()).toBe("12");
    await page.getByRole("link", { name: "Continue" }).click();
    await page.getByLabel("Show the message of row number").fill("5");
    await page.getByRole("button", { name: "Show" }).click();
    await expect(page.locator("#preview-text").textContent()).resolves.toBe(
      `Hi ${NAMES[3]}, your parcel is on its way.`,
    );
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByRole("button", { name: "Send 12 messages now" }).click();
    await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
    await context.close();
  });
});
