import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signIn } from "../src/access/console-sessions.ts";
import { importContactsFromCsv } from "../src/recipients/audience-import.ts";
import { startSendWorker, type RunningSendWorker } from "../src/runtime/send-worker-runtime.ts";
import { startTestApi, type ApiTestServer, type Launched } from "./helpers/api-client.ts";
import { createTestEnv, csvOf, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";

describe("HTTP API: Bull Board at /admin/queues", () => {
  let env: TestEnv;
  let api: ApiTestServer;
  let worker: RunningSendWorker | undefined;

  beforeAll(async () => {
    env = await createTestEnv("http_board");
    api = await startTestApi(env);
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.server.stop();
    await env?.cleanup();
  });

  it("answers with a token or the console's session cookie, 401 without", async () => {
    const session = await signIn(env.db, api.tokens.viewer);
    const page = await api.request("GET", "/admin/queues", { token: api.tokens.viewer });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<html");
    const queues = await api.json<{ queues: { name: string }[] }>("GET", "/admin/queues/api/queues", {
      token: null,
      headers: { cookie: `smsblast_session=${session.secret}` },
    });
    expect(queues.status).toBe(200);
    expect(queues.body.queues.map((q: { name: string }) => q.name).sort()).toEqual(["delivery", "schedules", "send"]);
    expect((await api.request("GET", "/admin/queues", { token: null })).status).toBe(401);
    expect((await api.request("GET", "/admin/queues/api/queues", { token: "smsb_wrong" })).status).toBe(401);
    // A token is no session: the cookie must hold a console session's secret.
    expect(
      (
        await api.request("GET", "/admin/queues/api/queues", {
          token: null,
          headers: { cookie: `smsblast_session=${api.tokens.viewer}` },
        })
      ).status,
    ).toBe(401);
    // Through the API the cookie reads (GET); writes want the header.
    expect(
      (
        await api.request("GET", "/api/v1/campaigns", {
          token: null,
          headers: { cookie: `smsblast_session=${session.secret}` },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await api.request("POST", "/api/v1/suppressions", {
          token: null,
          body: { phones: ["+6581234567"] },
          headers: { cookie: `smsblast_session=${session.secret}` },
        })
      ).status,
    ).toBe(401);
    expect(
      (
        await api.request("GET", "/api/v1/campaigns", {
          token: null,
          headers: { cookie: `smsblast_session=${api.tokens.admin}` },
        })
      ).status,
    ).toBe(401);
  });

  it("refuses the board's write actions below admin; promoting a delayed start sends nothing before the campaign's time", async () => {
    const contacts = await env.writeCsv(
      "contacts.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(5).map((p) => [p]),
      ),
    );
    await importContactsFromCsv(env.db, contacts, { phoneColumn: "phone", tags: ["later"] });
    const launched = await api.json<Launched>("POST", "/api/v1/campaigns", {
      token: api.tokens.operator,
      body: {
        audience: "later",
        templateId: "1",
        params: { order: "A-1" },
        templateCheck: false,
        startAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    expect(launched.status).toBe(201);
    const id = launched.body.campaignId;
    const promote = `/admin/queues/api/queues/send/start-${id}/promote`;

    for (const role of ["viewer", "operator"] as const) {
      const refused = await api.json("PUT", promote, { token: api.tokens[role] });
      expect(refused.status).toBe(403);
    }
    worker = await startSendWorker(env.config, env.log);
    const promoted = await api.request("PUT", promote, { token: api.tokens.admin });
    expect(promoted.status).toBeLessThan(300);
    // The start job now runs at once; the campaign's own time still holds it back (and re-delays the start).
    await waitFor(async () => {
      const { rows } = await env.db.pool.query<{ status: string }>(`SELECT status FROM campaigns WHERE id = $1`, [id]);
      return rows[0]?.status === "scheduled" ? true : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const status = await api.json("GET", `/api/v1/campaigns/${id}`, { token: api.tokens.viewer });
    expect(status.body).toMatchObject({ status: "scheduled", recipients: { pending: 5, accepted: 0 } });
    expect(env.sandbox.ledger.stats().accepted.messages).toBe(0);
  });
});
