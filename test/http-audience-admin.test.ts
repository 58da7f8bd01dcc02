import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type ApiError, type ApiTestServer } from "./helpers/api-client.ts";
import { cliEnv, runCli } from "./helpers/cli.ts";
import { createTestEnv, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";

interface ImportBody {
  rows: number;
  inserted: number;
  updated: number;
  rejected: number;
  rejects: Array<{ row: number; value: string; reason: string }>;
}
interface TemplateBody {
  templateId: string;
  templateName: string;
  content: string;
  approvalStatus: number;
}

// Issue 14.4: schedules, contacts import, templates and suppression removal over HTTP, as the CLI does them.
describe("HTTP API: schedules, contacts, templates, suppressions", { timeout: 120_000 }, () => {
  let env: TestEnv;
  let api: ApiTestServer;
  beforeAll(async () => {
    env = await createTestEnv("http_audience_admin", { env: { CSV_MAX_BYTES: "4096" } });
    api = await startTestApi(env);
  });
  afterAll(async () => {
    await api?.server.stop();
    await env?.cleanup();
  });

  it("imports contacts from a CSV body, then schedules a campaign for their tag; roles and unknown names answer as they should", async () => {
    const numbers = singaporeNumbers(3, 71_000);
    const csv = `phone,first_name\n${numbers[0]},Ann\n${numbers[1]},\nnot-a-number,Bo\n${numbers[2]},Cy\n`;
    const asViewer = await api.json<ApiError>("POST", "/api/v1/contacts/import?tags=weekly", {
      token: api.tokens.viewer,
      body: csv,
      headers: { "content-type": "text/csv" },
    });
    expect(asViewer.status).toBe(403);
    const imported = await api.json<ImportBody>("POST", "/api/v1/contacts/import?tags=weekly,vip", {
      token: api.tokens.operator,
      body: csv,
      headers: { "content-type": "text/csv" },
    });
    expect(imported.status).toBe(200);
    expect(imported.body).toMatchObject({ rows: 4, inserted: 3, updated: 0, rejected: 1 });
    expect(imported.body.rejects).toEqual([{ row: 4, value: "not-a-number", reason: expect.any(String) as unknown }]);
    const contact = await env.db.prisma.contact.findUniqueOrThrow({ where: { phone: numbers[1]! } });
    expect(contact.tags.sort()).toEqual(["vip", "weekly"]);

    const tooBig = await api.json<ApiError>("POST", "/api/v1/contacts/import", {
      token: api.tokens.operator,
      body: `phone\n${"+6581000000\n".repeat(400)}`,
      headers: { "content-type": "text/csv" },
    });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error.message).toContain("CSV_MAX_BYTES");

    const schedule = { cron: "0 9 * * MON", timezone: "Asia/Singapore", templateId: "1", params: { order: "W" } };
    const ghost = await api.json<ApiError>("PUT", "/api/v1/schedules/weekly-promo", {
      token: api.tokens.operator,
      body: { ...schedule, audience: "nobody", templateCheck: false },
    });
    expect(ghost.status).toBe(404);
    expect(ghost.body.error).toMatchObject({ code: "audience_not_found", field: "audience" });
    const badCron = await api.json<ApiError>("PUT", "/api/v1/schedules/weekly-promo", {
      token: api.tokens.operator,
      body: { ...schedule, cron: "0 9 * *", audience: "weekly", templateCheck: false },
    });
    expect(badCron.status).toBe(400);
    expect(badCron.body.error).toMatchObject({ field: "cron" });

    const saved = await api.json<{ name: string; nextRunAt: string }>("PUT", "/api/v1/schedules/weekly-promo", {
      token: api.tokens.operator,
      body: { ...schedule, audience: "weekly", templateCheck: false },
    });
    expect(saved.status).toBe(200);
    expect(new Date(saved.body.nextRunAt).getUTCHours()).toBe(1); // 09:00 in Singapore
    const listed = await api.json<{ schedules: Array<{ name: string; audience: string; nextRunAt: string }> }>(
      "GET",
      "/api/v1/schedules",
      { token: api.tokens.viewer },
    );
    expect(listed.body.schedules).toEqual([
      expect.objectContaining({ name: "weekly-promo", audience: "weekly", nextRunAt: saved.body.nextRunAt }),
    ]);
    expect((await api.json("DELETE", "/api/v1/schedules/weekly-promo", { token: api.tokens.viewer })).status).toBe(403);
    expect((await api.json("DELETE", "/api/v1/schedules/weekly-promo", { token: api.tokens.operator })).status).toBe(
      204,
    );
    const again = await api.json<ApiError>("DELETE", "/api/v1/schedules/weekly-promo", { token: api.tokens.operator });
    expect(again.status).toBe(404);
    expect(await env.db.prisma.schedule.count()).toBe(0);
  });

  it("manages templates: everyone reads, only admins change", async () => {
    const body = { name: "api-notice", content: "Hi %name%, your order is ready", type: 1 };
    expect((await api.json("POST", "/api/v1/templates", { token: api.tokens.operator, body })).status).toBe(403);
    const created = await api.json<TemplateBody>("POST", "/api/v1/templates", { token: api.tokens.admin, body });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ templateName: "api-notice", approvalStatus: -2 });
    const id = created.body.templateId;

    const got = await api.json<TemplateBody>("GET", `/api/v1/templates/${id}`, { token: api.tokens.viewer });
    expect(got.body.content).toBe(body.content);
    const listed = await api.json<{ total: number; templates: TemplateBody[] }>(
      "GET",
      "/api/v1/templates?name=api-notice",
      { token: api.tokens.viewer },
    );
    expect(listed.body.templates.map((t) => t.templateId)).toContain(id);

    const patch = { content: "Hi %name%, order %order% is ready" };
    expect((await api.json("PATCH", `/api/v1/templates/${id}`, { token: api.tokens.admin, body: patch })).status).toBe(
      204,
    );
    expect((await api.json("POST", `/api/v1/templates/${id}/submit`, { token: api.tokens.admin })).status).toBe(204);
    const submitted = await api.json<TemplateBody>("GET", `/api/v1/templates/${id}`, { token: api.tokens.viewer });
    expect(submitted.body).toMatchObject({ content: patch.content, approvalStatus: 0 });

    expect((await api.json("DELETE", `/api/v1/templates/${id}`, { token: api.tokens.admin })).status).toBe(204);
    const gone = await api.json<ApiError>("GET", `/api/v1/templates/${id}`, { token: api.tokens.viewer });
    expect(gone.status).toBe(404);
    const bad = await api.json<ApiError>("GET", "/api/v1/templates/abc", { token: api.tokens.viewer });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("whole number");
  });

  it("takes a number off the suppression list for admins only, audited without the number; the CLI does the same", async () => {
    const [a, b] = singaporeNumbers(2, 72_000);
    const added = await api.json("POST", "/api/v1/suppressions", {
      token: api.tokens.operator,
      body: { phones: [a, b], reason: "stop" },
    });
    expect(added.status).toBe(200);
    const path = `/api/v1/suppressions/${encodeURIComponent(a!)}`;
    expect((await api.json("DELETE", path, { token: api.tokens.operator })).status).toBe(403);
    const removed = await api.json<{ phone: string; reason: string }>("DELETE", path, { token: api.tokens.admin });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ phone: a, reason: "stop" });
    const twice = await api.json<ApiError>("DELETE", path, { token: api.tokens.admin });
    expect(twice.status).toBe(404);
    expect(twice.body.error.code).toBe("not_suppressed");
    expect(await env.db.prisma.suppression.findUnique({ where: { phone: a! } })).toBeNull();

    const audit = await env.db.prisma.auditEntry.findMany({ where: { action: "suppression.remove" } });
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit.map((e) => e.details))).not.toContain(a!.slice(3));

    const cli = await runCli(["suppress", "remove", b!], cliEnv(env));
    expect(cli.code, cli.output).toBe(0);
    expect(cli.stdout).toContain(`${b} removed from the suppression list (was: stop)`);
    expect(await env.db.prisma.suppression.count()).toBe(0);
  });
});
