import { randomUUID } from "node:crypto";
import SwaggerParser from "@apidevtools/swagger-parser";
import type { OpenAPIV3 } from "openapi-types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../src/access/api-tokens.ts";
import { importContactsFromCsv } from "../src/recipients/audience-import.ts";
import { startApiServer } from "../src/runtime/api-server.ts";
import { startTestApi, type ApiError, type ApiTestServer, type Launched } from "./helpers/api-client.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";

describe("HTTP API: serve, auth, campaigns, errors, OpenAPI", () => {
  let env: TestEnv;
  let api: ApiTestServer;

  beforeAll(async () => {
    env = await createTestEnv("http_api");
    api = await startTestApi(env);
    const contacts = await env.writeCsv(
      "contacts.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(30).map((p) => [p]),
      ),
    );
    await importContactsFromCsv(env.db, contacts, { phoneColumn: "phone", tags: ["vip"] });
  });
  afterAll(async () => {
    await api?.server.stop();
    await env?.cleanup();
  });

  const audienceLaunch = (extra: Record<string, unknown> = {}) => ({
    audience: "vip",
    templateId: "1",
    params: { order: "A-1" },
    templateCheck: false,
    startAt: new Date(Date.now() + 3_600_000).toISOString(), // scheduled: nothing is sent by this file
    allowRepeat: true, // this file launches the same audience again and again (the repeat guard: test/first-hour/repeat-guard.test.ts)
    ...extra,
  });

  it("answers /healthz and /readyz without a token", async () => {
    expect(await api.json("GET", "/healthz", { token: null })).toMatchObject({ status: 200, body: { status: "ok" } });
    const ready = await api.json("GET", "/readyz", { token: null });
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true, checks: { postgres: "ok", redis: "ok", migrations: "ok" } });
  });

  it("refuses a missing, wrong or revoked token with the same 401, and too little role with 403", async () => {
    const none = await api.json<ApiError>("GET", "/api/v1/campaigns", { token: null });
    const wrong = await api.json<ApiError>("GET", "/api/v1/campaigns", { token: `smsb_${"A".repeat(43)}` });
    const created = await api.json<{ token: string }>("POST", "/api/v1/tokens", {
      body: { name: "to-revoke", role: "operator" },
    });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^smsb_[\w-]{43}$/);
    expect((await api.json("GET", "/api/v1/campaigns", { token: created.body.token })).status).toBe(200);
    expect((await api.json("DELETE", "/api/v1/tokens/to-revoke")).status).toBe(200);
    const revoked = await api.json<ApiError>("GET", "/api/v1/campaigns", { token: created.body.token });
    for (const answer of [none, wrong, revoked]) {
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual(none.body);
    }
    expect(none.body.error.code).toBe("unauthorized");

    const viewerLaunch = await api.json<ApiError>("POST", "/api/v1/campaigns", {
      token: api.tokens.viewer,
      body: audienceLaunch(),
    });
    expect(viewerLaunch.status).toBe(403);
    expect(viewerLaunch.body.error.code).toBe("forbidden");
    expect(
      (await api.json("GET", "/api/v1/campaigns/" + randomUUID() + "/report.csv", { token: api.tokens.viewer })).status,
    ).toBe(403);
    expect((await api.json("GET", "/api/v1/tokens", { token: api.tokens.operator })).status).toBe(403);
  });

  it("stores tokens only as their SHA-256, a display prefix, role and times", async () => {
    const { rows } = await env.db.pool.query<{ token_hash: string; prefix: string; last_used_at: Date | null }>(
      `SELECT * FROM api_tokens`,
    );
    const secrets = Object.values(api.tokens);
    for (const row of rows) {
      for (const value of Object.values(row)) for (const secret of secrets) expect(String(value)).not.toContain(secret);
    }
    const hashes = rows.map((r) => r.token_hash);
    for (const secret of secrets) expect(hashes).toContain(hashToken(secret));
    expect(rows.every((r) => /^smsb_.{8}$/.test(r.prefix))).toBe(true);
    expect(rows.find((r) => r.token_hash === hashToken(api.tokens.admin))!.last_used_at).not.toBeNull();
    expect(env.logOutput()).not.toContain(api.tokens.admin);
  });

  it("launches from an audience, lists, shows, and audits it", async () => {
    const launched = await api.json<Launched>("POST", "/api/v1/campaigns", {
      token: api.tokens.operator,
      body: audienceLaunch({ name: "api audience" }),
    });
    expect(launched.status).toBe(201);
    expect(launched.body).toMatchObject({ dryRun: false, recipients: 30, requests: 1, enqueued: true });
    const id = launched.body.campaignId;
    const shown = await api.json("GET", `/api/v1/campaigns/${id}`, { token: api.tokens.viewer });
    expect(shown.body).toMatchObject({
      id,
      name: "api audience",
      status: "scheduled",
      recipients: { total: 30, pending: 30 },
    });
    const list = await api.json<{ campaigns: { id: string }[] }>("GET", "/api/v1/campaigns?status=scheduled&limit=5", {
      token: api.tokens.viewer,
    });
    expect(list.body.campaigns.map((c: { id: string }) => c.id)).toContain(id);
    const audit = await api.json<{ entries: unknown[] }>("GET", `/api/v1/audit?campaignId=${id}`, {
      token: api.tokens.viewer,
    });
    expect(audit.body.entries).toEqual([
      expect.objectContaining({
        action: "campaign.create",
        campaignId: id,
        actor: expect.stringMatching(/^test-operator-/) as unknown,
      }),
    ]);
  });

  it("returns the first campaign to a create retried with the same Idempotency-Key; another body is 422", async () => {
    const headers = { "idempotency-key": `key-${randomUUID()}` };
    const body = audienceLaunch({ name: "idempotent" });
    const [first, second] = await Promise.all([
      api.json<Launched>("POST", "/api/v1/campaigns", { token: api.tokens.operator, body, headers }),
      api.json<Launched>("POST", "/api/v1/campaigns", { token: api.tokens.operator, body, headers }),
    ]);
    expect([first.status, second.status].sort()).toEqual([200, 201]);
    expect(second.body.campaignId).toBe(first.body.campaignId);
    const third = await api.json<Launched>("POST", "/api/v1/campaigns", { token: api.tokens.operator, body, headers });
    expect(third).toMatchObject({ status: 200, body: { campaignId: first.body.campaignId } });
    expect(third.headers.get("idempotent-replayed")).toBe("true");
    const { rows } = await env.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM campaigns WHERE name = 'idempotent'`,
    );
    expect(rows[0]?.n).toBe(1);

    const changed = await api.json<ApiError>("POST", "/api/v1/campaigns", {
      token: api.tokens.operator,
      body: { ...body, name: "other" },
      headers,
    });
    expect(changed.status).toBe(422);
    expect(changed.body.error).toMatchObject({ code: "idempotency_key_reused", field: "Idempotency-Key" });
    // Keys are per token: the same key from another token is a new campaign.
    const otherToken = await api.json<Launched>("POST", "/api/v1/campaigns", {
      token: api.tokens.admin,
      body,
      headers,
    });
    expect(otherToken.status).toBe(201);
    expect(otherToken.body.campaignId).not.toBe(first.body.campaignId);
  });

  it("answers bad input with 400 naming the field, unknown ids with 404, a refused transition with 409 and the state", async () => {
    const badLimit = await api.json<ApiError>("GET", "/api/v1/campaigns?limit=abc");
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error.field).toBe("limit");
    const badStatus = await api.json<ApiError>("GET", "/api/v1/campaigns?status=sleeping");
    expect(badStatus.body.error.field).toBe("status");
    const noTemplate = await api.json<ApiError>("POST", "/api/v1/campaigns", { body: { audience: "vip" } });
    expect(noTemplate.status).toBe(400);
    expect(noTemplate.body.error.field).toBe("templateId");
    const bothSources = await api.json<ApiError>("POST", "/api/v1/campaigns", {
      body: audienceLaunch({ uploadId: randomUUID() }),
    });
    expect(bothSources.status).toBe(400);
    expect(bothSources.body.error.code).toBe("invalid_source");
    const badId = await api.json<ApiError>("GET", "/api/v1/campaigns/not-a-uuid");
    expect(badId.status).toBe(400);
    expect(badId.body.error.field).toBe("id");
    const notJson = await api.json<ApiError>("POST", "/api/v1/campaigns", { body: "{nope" });
    expect(notJson.status).toBe(400);
    const badToken = await api.json<ApiError>("POST", "/api/v1/tokens", { body: { name: "x", role: "root" } });
    expect(badToken.body.error.field).toBe("role");
    const noAudience = await api.json<ApiError>("POST", "/api/v1/campaigns", {
      body: audienceLaunch({ audience: "nobody-has-this-tag" }),
    });
    expect(noAudience.status).toBeGreaterThanOrEqual(400);
    expect(noAudience.status).toBeLessThan(500);

    const unknown = randomUUID();
    for (const path of [
      `/api/v1/campaigns/${unknown}`,
      `/api/v1/campaigns/${unknown}/events`,
      `/api/v1/campaigns/${unknown}/report.csv`,
      `/api/v1/campaigns/${unknown}/rejects.csv`,
    ]) {
      const answer = await api.json<ApiError>("GET", path);
      expect(answer.status, path).toBe(404);
      expect(answer.body.error.code).toBe("campaign_not_found");
    }
    for (const action of ["pause", "resume", "cancel"])
      expect((await api.json("POST", `/api/v1/campaigns/${unknown}/${action}`)).status).toBe(404);
    expect((await api.json("DELETE", "/api/v1/tokens/nobody")).status).toBe(404);
    expect((await api.json("GET", "/api/v1/nothing-here")).status).toBe(404);

    const launched = await api.json<Launched>("POST", "/api/v1/campaigns", {
      token: api.tokens.operator,
      body: audienceLaunch(),
    });
    const id = launched.body.campaignId;
    expect(
      (await api.json<{ status: string }>("POST", `/api/v1/campaigns/${id}/cancel`, { token: api.tokens.operator }))
        .body.status,
    ).toBe("cancelled");
    const again = await api.json<ApiError>("POST", `/api/v1/campaigns/${id}/resume`, { token: api.tokens.operator });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: "invalid_transition" });
    expect(again.body.error.message).toContain("is cancelled");
  });

  it("never answers a stack trace: an internal failure is a generic 500 with the request id", async () => {
    const broken = await startApiServer({ ...env.config }, env.log, { port: 0 });
    try {
      await env.db.pool.query(`ALTER TABLE audit_log RENAME TO audit_log_gone`);
      const response = await fetch(`${broken.url}/api/v1/audit`, {
        headers: { authorization: `Bearer ${api.tokens.viewer}` },
      });
      const body: unknown = await response.json();
      expect(response.status).toBe(500);
      expect(body).toEqual({
        error: { code: "internal_error", message: expect.stringContaining("request's id") as unknown },
      });
      expect(JSON.stringify(body)).not.toMatch(/audit_log|at .*\.ts/);
      expect(response.headers.get("x-request-id")).toBeTruthy();
    } finally {
      await env.db.pool.query(`ALTER TABLE audit_log_gone RENAME TO audit_log`);
      await broken.stop();
    }
  });

  it("serves an OpenAPI document that validates, with every API route in it, and docs at /docs", async () => {
    const response = await fetch(`${api.server.url}/openapi.json`);
    const document = (await response.json()) as OpenAPIV3.Document;
    await expect(SwaggerParser.validate(structuredClone(document))).resolves.toBeTruthy();
    const paths = Object.keys(document.paths);
    for (const path of [
      "/api/v1/campaigns",
      "/api/v1/campaigns/{id}",
      "/api/v1/campaigns/{id}/events",
      "/api/v1/tokens",
      "/api/v1/audit",
      "/readyz",
    ]) {
      expect(paths).toContain(path);
    }
    expect(document.components?.schemas?.Error).toBeDefined();
    expect((await fetch(`${api.server.url}/docs`, { redirect: "follow" })).status).toBe(200);
  });
});
