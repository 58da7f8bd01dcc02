import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { expect } from "vitest";
import { launchBrowser } from "./browser.ts";
import { startTestApi, type ApiTestServer } from "./api-client.ts";
import type { TestEnv } from "./test-env.ts";

export interface ConsoleTestServer extends ApiTestServer {
  browser: Browser;
  /** A fresh browser context (own cookies) signed in with `token` (default: the admin's). */
  signedIn(token?: string, options?: { width?: number }): Promise<{ context: BrowserContext; page: Page }>;
  close(): Promise<void>;
}

/** `smsblast serve` on a random port with the test env's database and sandbox, and a headless Chromium. */
export async function startConsoleTest(env: TestEnv): Promise<ConsoleTestServer> {
  const api = await startTestApi(env);
  const browser = await launchBrowser();
  return {
    ...api,
    browser,
    async signedIn(token = api.tokens.admin, options = {}) {
      const context = await browser.newContext({ viewport: { width: options.width ?? 1200, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${api.server.url}/sign-in`);
      await page.getByLabel("API token").fill(token);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL(/\/campaigns/);
      return { context, page };
    },
    async close() {
      await browser.close();
      await api.server.stop();
    },
  };
}

/** The page fits a phone's width: nothing wider than the viewport. */
export async function expectNoHorizontalScroll(page: Page): Promise<void> {
  const { scrollWidth, clientWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  }));
  expect(scrollWidth).toBeLessThanOrEqual(clientWidth);
}

const AXE_SOURCE = fileURLToPath(import.meta.resolve("axe-core/axe.min.js"));

/** axe-core, run inside the page: the serious and critical violations, as "rule: target" lines. */
export async function seriousA11yViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE_SOURCE });
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run();
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  return violations;
}

interface AxeViolation {
  id: string;
  impact: string | null;
  nodes: Array<{ target: string[] }>;
}
