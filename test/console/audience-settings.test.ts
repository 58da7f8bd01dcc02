import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

describe("console: audience and settings", () => {
  let env: TestEnv;
  let web: ConsoleTestServer;
  let worker: RunningSendWorker;
  let templateId: string;

  beforeAll(async () => {
    env = await createTestEnv("console_audience");
    web = await startConsoleTest(env);
    worker = await startSendWorker(env.config, env.log);
    const { api, close } = createTemplatesApi(env.config);
    templateId = (await api.create({ name: "hello", content: "Hello from %city%.", type: 0 })).templateId;
    await close();
    await fetch(`${env.sandbox.url}/_sandbox/templates/${templateId}/approval`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ approval_status: 1 }),
    });
  });
  afterAll(async () => {
    await worker?.stop();
    await web?.close();
    await env?.cleanup();
  });

  it("imports contacts, lists tags and segments with sendable counts, adds and finds suppressed numbers", async () => {
    const { context, page } = await web.signedIn(web.tokens.operator);
    await page.getByRole("link", { name: "Audience" }).click();
    await page.waitForURL(/\/audience$/);
    const numbers = singaporeNumbers(6, 400_000);
    const contacts = await env.writeCsv(
      "contacts.csv",
      csvOf(
        ["phone", "tags", "city"],
        numbers.map((p, i) => [p, i < 4 ? "vip" : "newsletter", i % 2 ? "Singapore" : "Jurong"]),
      ),
    );
    await page.getByLabel("Contacts CSV").setInputFiles(contacts);
    await page.getByLabel("Tags for every imported contact (comma separated)").fill("imported");
    await page.getByRole("button", { name: "Import contacts" }).click();
    await expect(page.locator(".notice-success").textContent()).resolves.toContain("6 new contacts");
    const tagRows = await page
      .locator("#tags tbody tr")
      .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent?.trim())));
    expect(tagRows).toEqual([
      ["imported", "6", "6"],
      ["newsletter", "2", "2"],
      ["vip", "4", "4"],
    ]);

    await page.getByLabel("Name", { exact: true }).fill("vip-jurong");
    await page.getByLabel("Contacts with any of these tags (comma separated)").fill("vip");
    await page.getByLabel(/And all of these attribute values/).fill("city=Jurong");
    await page.getByRole("button", { name: "Save segment" }).click();
    await expect(page.locator("#segments tbody tr td:last-child").textContent()).resolves.toBe("2");

    // One bad number refuses the whole addition, with the reason next to the field.
    await page.getByLabel("Numbers (one a line, or comma separated)").fill(`${numbers[0]}\n12`);
    await page.getByRole("button", { name: "Suppress", exact: true }).click();
    await expect(page.locator("#phones-error").textContent()).resolves.toContain('"12" is not a valid phone number');
    await page.getByLabel("Numbers (one a line, or comma separated)").fill(`${numbers[0]}, ${numbers[1]}`);
    await page.getByRole("button", { name: "Suppress", exact: true }).click();
    await expect(page.locator(".notice-success").textContent()).resolves.toContain("2 numbers added");
    // Suppressing a number opts its contact out: both were vip, so vip has 2 sendable contacts left.
    expect(await page.locator("#tags tbody tr:last-child td:last-child").textContent()).toBe("2");
    await page.getByLabel("Find a number").fill(numbers[1]!.slice(-5));
    await page.getByRole("button", { name: "Search" }).click();
    expect(await page.locator("#suppressions tbody tr td:first-child").allTextContents()).toEqual([numbers[1]]);
    const optOuts = await env.writeCsv("opt-outs.csv", csvOf(["phone"], [[numbers[5]!], ["not a number"]]));
    await page.getByLabel("CSV with a phone column").setInputFiles(optOuts);
    await page.getByRole("button", { name: "Import suppressions" }).click();
    await expect(page.locator(".notice-success").textContent()).resolves.toBe(
      "2 rows read, 1 number added, 1 row without a valid number.",
    );
    expect(await seriousA11yViolations(page)).toEqual([]);
    await screenshot(page, "audience");
    await page.setViewportSize({ width: 375, height: 800 });
    await expectNoHorizontalScroll(page);
    await context.close();
  });

  it("an admin creates a token, sees it once, revokes it; the queue dashboard opens with the session", async () => {
    const { context, page } = await web.signedIn(web.tokens.admin);
    await page.getByRole("link", { name: "Settings" }).click();
    await page.getByLabel("Name (who or what uses it)").fill("crm");
    await page.getByLabel("Role").selectOption("operator");
    await page.getByRole("button", { name: "Create token" }).click();
    const secret = await page.getByLabel("New token").inputValue();
    expect(secret).toMatch(/^smsb_[\w-]{43}$/);
    expect(await seriousA11yViolations(page)).toEqual([]);
    await screenshot(page, "settings-token-created");
    // Shown once: the list shows its prefix only.
    await page.reload();
    expect(await page.content()).not.toContain(secret);
    await page.getByLabel("Name (who or what uses it)").fill("crm");
    await page.getByRole("button", { name: "Create token" }).click();
    await expect(page.locator("#token-name-error").textContent()).resolves.toContain("already exists");
    await page.getByRole("button", { name: "Revoke crm" }).click();
    await expect(page.locator(".notice-success").textContent()).resolves.toContain("Token crm revoked");

    const refused = await web.browser.newPage();
    await refused.goto(`${web.server.url}/sign-in`);
    await refused.getByLabel("API token").fill(secret);
    await refused.getByRole("button", { name: "Sign in" }).click();
    await expect(refused.locator("#token-error").textContent()).resolves.toContain("not valid");
    await refused.close();

    const board = await page.goto(`${web.server.url}/admin/queues`, { waitUntil: "commit" });
    expect(board?.status()).toBe(200);
    await context.close();
  });

  it("an operator's settings have no token list", async () => {
    const { context, page } = await web.signedIn(web.tokens.operator);
    await page.goto(`${web.server.url}/settings`);
    expect(await page.locator("#tokens").count()).toBe(0);
    expect(await page.getByRole("link", { name: "Queue dashboard" }).count()).toBe(1);
    const forbidden = await page.request.post(`${web.server.url}/settings/tokens`, {
      form: { name: "sneaky", role: "admin", _csrf: "x" },
    });
    expect(forbidden.status()).toBe(403);
    await context.close();
  });

  it("sends to a tag from the database, and saves a cron schedule; refusals appear next to their fields", async () => {
    const { context, page } = await web.signedIn(web.tokens.operator);
    await page.goto(`${web.server.url}/campaigns/new`);
    await page.getByRole("link", { name: "send to contacts already in the database" }).click();
    await page.getByLabel("Tag or segment").selectOption("vip");
    await page.getByLabel("Provider API").selectOption("legacy");
    await page.getByLabel("Or template id").fill("424242");
    await page.getByRole("button", { name: "Continue" }).click();
    await expect(page.locator("#templateId-error").textContent()).resolves.toContain("424242");
    await page.getByLabel("Legacy SMS API template").selectOption(templateId);
    await page.getByLabel("Or template id").fill("");
    await page.getByLabel(/Variables from contact attributes/).fill("city=city");
    await page.getByRole("button", { name: "Continue" }).click();
    // vip had 4 contacts; the two suppressed above are opted out.
    await page.getByRole("button", { name: "Send 2 messages now" }).click();
    await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
    await page.locator("#status .chip-completed").waitFor({ timeout: 30_000 });
    expect(await seriousA11yViolations(page)).toEqual([]);

    await page.goto(`${web.server.url}/campaigns/new/audience`);
    await page.getByLabel("Tag or segment").selectOption("vip-jurong");
    await page.getByLabel("Legacy SMS API template").selectOption(templateId);
    await page.getByLabel(/Variables from contact attributes/).fill("city=city");
    await page.getByLabel("Again and again, on a cron schedule").check();
    await page.getByLabel("Cron schedule", { exact: true }).fill("every monday");
    await page.getByLabel("Campaign (or schedule) name").fill("weekly-vip");
    await page.getByRole("button", { name: "Continue" }).click();
    expect(await page.locator("#cron-error").count()).toBe(1);
    await page.getByLabel("Cron schedule", { exact: true }).fill("0 9 * * MON");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByRole("button", { name: "Save the schedule weekly-vip" }).click();
    await expect(page.locator("h1").textContent()).resolves.toBe("Schedule weekly-vip saved");
    const stored = await env.db.pool.query<{ name: string; cron: string }>("SELECT name, cron FROM schedules");
    expect(stored.rows).toEqual([{ name: "weekly-vip", cron: "0 9 * * MON" }]);
    await context.close();
  });
});
