import { stat } from "node:fs/promises";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiServer, type RunningApiServer } from "../../src/runtime/api-server.ts";
import { launchBrowser, screenshot } from "../helpers/browser.ts";
import { createTestEnv, type TestEnv } from "../helpers/test-env.ts";

// The first browser test: proves that Debian's chromium starts headless here and in CI and that the server's
// page renders, before any console screen depends on it.
describe("console smoke test in a real browser", () => {
  let env: TestEnv;
  let server: RunningApiServer;
  let browser: Browser;

  beforeAll(async () => {
    env = await createTestEnv("console_smoke");
    server = await startApiServer(env.config, env.log, { host: "127.0.0.1", port: 0 });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await env?.cleanup();
  });

  it("opens / and renders the console's page", async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${server.url}/`);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toContain("smsblast");
    await expect(page.locator("h1").textContent()).resolves.toContain("smsblast");
    const file = await screenshot(page, "smoke");
    expect((await stat(file)).size).toBeGreaterThan(1000);
  });
});
