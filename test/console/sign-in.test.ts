import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeApiToken, createApiToken } from "../../src/access/api-tokens.ts";
import { screenshot } from "../helpers/browser.ts";
import {
  expectNoHorizontalScroll,
  seriousA11yViolations,
  startConsoleTest,
  type ConsoleTestServer,
} from "../helpers/console.ts";
import { createTestEnv, type TestEnv } from "../helpers/test-env.ts";

describe("console: sign-in, sessions and the campaigns list", () => {
  let env: TestEnv;
  let web: ConsoleTestServer;

  beforeAll(async () => {
    env = await createTestEnv("console_sign_in");
    web = await startConsoleTest(env);
  });
  afterAll(async () => {
    await web?.close();
    await env?.cleanup();
  });

  it("refuses a wrong token next to the field, then signs in with an HTTP-only SameSite cookie", async () => {
    const context = await web.browser.newContext();
    const page = await context.newPage();
    await page.goto(`${web.server.url}/campaigns`);
    expect(new URL(page.url()).pathname).toBe("/sign-in");
    expect(await seriousA11yViolations(page)).toEqual([]);
    await screenshot(page, "sign-in");
    await page.getByLabel("API token").fill("smsb_wrong");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.locator("#token-error").textContent()).resolves.toContain("not valid");
    expect(await page.getByLabel("API token").getAttribute("aria-invalid")).toBe("true");
    await page.getByLabel("API token").fill(web.tokens.viewer);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/campaigns$/);
    await expect(page.locator("h1").textContent()).resolves.toBe("Campaigns");
    const cookie = (await context.cookies()).find((c) => c.name === "smsblast_session")!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe("Lax");
    expect(cookie.value).not.toContain(web.tokens.viewer);
    // The database keeps a hash of the session, never the cookie's value.
    const stored = await env.db.pool.query<{ id_hash: string }>("SELECT id_hash FROM console_sessions");
    expect(stored.rows.map((r) => r.id_hash)).not.toContain(cookie.value);
    // A viewer sees no "New campaign" link.
    expect(await page.getByRole("link", { name: "New campaign" }).count()).toBe(0);
    await context.close();
  });

  it("revoking the token ends its sessions at their next request", async () => {
    const { token, secret } = await createApiToken(env.db, { name: "soon-revoked", role: "operator" });
    const { context, page } = await web.signedIn(secret);
    await revokeApiToken(env.db, token.name);
    await page.goto(`${web.server.url}/campaigns`);
    expect(new URL(page.url()).pathname).toBe("/sign-in");
    await context.close();
  });

  it("a session idle for longer than CONSOLE_SESSION_IDLE_MINUTES has ended", async () => {
    const { context, page } = await web.signedIn();
    await env.db.pool.query("UPDATE console_sessions SET last_seen_at = now() - make_interval(mins => $1)", [
      env.config.api.sessionIdleMs / 60_000 + 1,
    ]);
    await page.goto(`${web.server.url}/campaigns`);
    expect(new URL(page.url()).pathname).toBe("/sign-in");
    await context.close();
  });

  it("refuses a form post without the session's CSRF token", async () => {
    const { context, page } = await web.signedIn();
    const status = await page.evaluate(async () => {
      const response = await fetch("/sign-out", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "_csrf=forged",
      });
      return response.status;
    });
    expect(status).toBe(403);
    // Still signed in: the forged sign-out changed nothing.
    await page.goto(`${web.server.url}/campaigns`);
    expect(new URL(page.url()).pathname).toBe("/campaigns");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in$/);
    await page.goto(`${web.server.url}/campaigns`);
    expect(new URL(page.url()).pathname).toBe("/sign-in");
    await context.close();
  });

  it("lists campaigns newest first, filtered by status, and fits a phone's width", async () => {
    for (let i = 0; i < 3; i++) {
      await env.db.pool.query(
        `INSERT INTO campaigns (id, name, status, provider, template_id, created_at)
         VALUES (gen_random_uuid(), $1, $2::"CampaignStatus", 'messages', '1', now() - make_interval(mins => $3))`,
        [`list-${i}`, i === 1 ? "completed" : "running", 10 - i],
      );
    }
    const { context, page } = await web.signedIn(web.tokens.viewer, { width: 375 });
    const names = await page.locator("#campaigns tbody tr td:first-child a").allTextContents();
    expect(names).toEqual(["list-2", "list-1", "list-0"]);
    await expectNoHorizontalScroll(page);
    expect(await seriousA11yViolations(page)).toEqual([]);
    await screenshot(page, "campaigns-375px");
    await page.getByLabel("Status").selectOption("completed");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/status=completed/);
    expect(await page.locator("#campaigns tbody tr td:first-child a").allTextContents()).toEqual(["list-1"]);
    await context.close();
  });
});
