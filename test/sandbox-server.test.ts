import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sandboxOptionsFromEnv, startSandbox, type SandboxServer } from "../src/sandbox/server.ts";

const API_KEY = "sandbox-key";
const API_SECRET = "sandbox-secret";
const AUTH = `Basic ${Buffer.from(`${API_KEY}:${API_SECRET}`).toString("base64")}`;
const WRONG_AUTH = `Basic ${Buffer.from(`${API_KEY}:not-the-secret`).toString("base64")}`;
const NINETEEN_DIGITS = /^\d{19}$/;

interface CallOptions {
  method?: string;
  body?: unknown;
  rawBody?: string;
  auth?: string | null;
}

interface CallResult {
  status: number;
  text: string;
  headers: Headers;
  json: Record<string, unknown>;
}

let sandbox: SandboxServer;

async function call(path: string, options: CallOptions = {}): Promise<CallResult> {
  const { method = options.body === undefined && options.rawBody === undefined ? "GET" : "POST" } = options;
  const headers: Record<string, string> = { "content-type": "application/json" };
  const auth = options.auth === undefined ? AUTH : options.auth;
  if (auth !== null) headers.authorization = auth;
  const response = await fetch(`${sandbox.url}${path}`, {
    method,
    headers,
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await response.text();
  return {
    status: response.status,
    text,
    headers: response.headers,
    json: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, seed: 1234 });
});

afterAll(async () => {
  await sandbox.close();
});

beforeEach(async () => {
  sandbox.setOptions({ latencyMs: 0, errorRate: 0, invalidRate: 0, throttleRate: 0, hangRate: 0 });
  await call("/_sandbox/reset", { method: "POST" });
});

describe("auth", () => {
  it("answers 401 with each API family's own error code and never echoes credentials", async () => {
    const messages = await call("/v1/messages", { auth: WRONG_AUTH, body: { to: ["+6591234567"] } });
    expect(messages.status).toBe(401);
    expect(messages.json).toMatchObject({ code: 2001, total_count: 0, accepted_count: 0 });
    expect(messages.json.plan_id).toMatch(NINETEEN_DIGITS);

    const custom = await call("/v1/custom-messages", { auth: null, body: {} });
    expect(custom.status).toBe(401);
    expect(custom.json).toEqual({ code: 2001, message: "Authentication failed, incorrect token provided" });

    const legacy = await call("/v1/send", { auth: WRONG_AUTH, body: {} });
    expect(legacy.status).toBe(401);
    expect(legacy.json).toEqual({ code: 30000, message: "Unauthorized." });

    const templates = await call("/v1/templates", { auth: null });
    expect(templates.status).toBe(401);
    expect(templates.json).toEqual({ code: 30000, message: "Unauthorized." });

    for (const result of [messages, custom, legacy, templates]) {
      expect(result.text).not.toContain(API_SECRET);
      expect(result.text).not.toContain(API_KEY);
    }
    expect(sandbox.ledger.stats().unauthorized).toBe(4);
  });
});

describe("POST /v1/messages", () => {
  it("rejects bad parameters with 3002 and bad JSON with 3001", async () => {
    const noTo = await call("/v1/messages", { body: { template: { id: "t1", params: {} } } });
    expect(noTo.status).toBe(400);
    expect(noTo.json).toMatchObject({ code: 3002, accepted_count: 0 });
    expect(noTo.json.message).toMatch(/^to:/);

    const noTemplateId = await call("/v1/messages", { body: { to: ["+6591234567"], template: { params: {} } } });
    expect(noTemplateId.json).toMatchObject({ code: 3002, total_count: 1 });
    expect(noTemplateId.json.message).toMatch(/template\.id/);

    const tooMany = Array.from({ length: 1001 }, (_, i) => `+65900${String(i).padStart(5, "0")}`);
    const overLimit = await call("/v1/messages", { body: { to: tooMany, template: { id: "t1" } } });
    expect(overLimit.status).toBe(400);
    expect(overLimit.json).toMatchObject({ code: 3002, message: "to: at most 1000 numbers per request" });

    const badJson = await call("/v1/messages", { rawBody: "{not json" });
    expect(badJson.status).toBe(400);
    expect(badJson.json).toMatchObject({ code: 3001 });
    expect(sandbox.ledger.stats().accepted.messages).toBe(0);
  });

  it("returns plan_id and message_id for a single accepted target", async () => {
    const result = await call("/v1/messages", {
      body: { to: ["+6591234567"], template: { id: "welcome", params: { name: "Bob" } } },
    });
    expect(result.status).toBe(200);
    expect(result.json).toMatchObject({ total_count: 1, accepted_count: 1 });
    expect(result.json.plan_id).toMatch(NINETEEN_DIGITS);
    expect(result.json.message_id).toMatch(NINETEEN_DIGITS);
    expect(sandbox.ledger.timesReceived("+6591234567", "messages")).toBe(1);
  });

  it("counts refused numbers and omits message_id for several targets", async () => {
    const result = await call("/v1/messages", {
      body: { to: ["+6591234567", "12", "923700056581"], template: { id: "welcome" } },
    });
    expect(result.json).toMatchObject({ total_count: 3, accepted_count: 2 });
    expect(result.json).not.toHaveProperty("message_id");
    expect(sandbox.ledger.stats().rejectedNumbers).toBe(1);
  });

  it("checks the schedule_time window and returns task_id as a bare big number", async () => {
    const tooSoon = await call("/v1/messages", {
      body: { to: ["+6591234567"], template: { id: "t1" }, schedule_time: nowSeconds() + 60 },
    });
    expect(tooSoon.status).toBe(400);
    expect(tooSoon.json).toMatchObject({ code: 3002 });
    expect(tooSoon.json.message).toMatch(/schedule_time/);

    const tooLate = await call("/v1/messages", {
      body: { to: ["+6591234567"], template: { id: "t1" }, schedule_time: nowSeconds() + 31 * 86_400 },
    });
    expect(tooLate.json).toMatchObject({ code: 3002 });
    expect(tooLate.json.message).toMatch(/schedule_time/);

    const scheduled = await call("/v1/messages", {
      body: { to: ["+6591234567"], template: { id: "t1" }, schedule_time: nowSeconds() + 600 },
    });
    expect(scheduled.status).toBe(200);
    const match = /"task_id":(\d{19})\}/.exec(scheduled.text);
    expect(match).not.toBeNull();
    expect(BigInt(match?.[1] ?? "0")).toBeGreaterThan(BigInt(Number.MAX_SAFE_INTEGER));
    expect(scheduled.text).not.toMatch(/"task_id":"/);
  });

  it("fails on purpose for magic template ids", async () => {
    const to = ["+6591234567"];
    expect((await call("/v1/messages", { body: { to, template: { id: "freq-otp" } } })).json.code).toBe(3004);
    expect((await call("/v1/messages", { body: { to, template: { id: "rate-limited" } } })).json.code).toBe(3004);
    expect((await call("/v1/messages", { body: { to, template: { id: "fail-x" } } })).json.code).toBe(5001);
    expect((await call("/v1/messages", { body: { to, template: { id: "missing-1" } } })).json.code).toBe(4001);
    expect(sandbox.ledger.stats().accepted.messages).toBe(0);
  });

  it("keeps its own template ids apart from the legacy store: refuses only those it was told do not exist", async () => {
    const to = ["+6591234567"];
    const own = await startSandbox({ port: 0, legacyTemplates: [], missingMessagesTemplates: ["gone-1"] });
    try {
      const send = async (id: string) => {
        const response = await fetch(`${own.url}/v1/messages`, {
          method: "POST",
          headers: { authorization: AUTH, "content-type": "application/json" },
          body: JSON.stringify({ to, template: { id, params: {} } }),
        });
        return { status: response.status, json: (await response.json()) as Record<string, unknown> };
      };
      // The legacy store is empty; v1/messages does not ask it.
      expect((await send("promo-winter")).status).toBe(200);
      expect(await send("gone-1")).toMatchObject({ status: 400, json: { code: 4001, accepted_count: 0 } });
      await fetch(`${own.url}/_sandbox/messages-templates/missing`, {
        method: "POST",
        body: JSON.stringify({ ids: ["promo-winter"] }),
      });
      expect((await send("promo-winter")).json.code).toBe(4001);
      expect(own.ledger.timesReceived("+6591234567", "messages")).toBe(1);
      expect(own.ledger.stats().requests.templates).toBe(0);
    } finally {
      await own.close();
    }
  });
});

describe("POST /v1/send (legacy)", () => {
  // Template 1 is the legacy store's pre-seeded, approved template.
  const send = (body: Record<string, unknown>) => call("/v1/send", { body: { body: { template_id: 1 }, ...body } });

  it("replays the first answer for a repeated request_id without sending again", async () => {
    const first = await send({ to: ["+12673800456"], request_id: "req-1", custom_args: { campaign: 7 } });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ request_id: "req-1", custom_args: { campaign: 7 } });
    const smsIds = first.json.sms_ids as string[];
    expect(smsIds).toHaveLength(1);
    expect(smsIds[0]).toMatch(/^\d{13}_15_3_11_[0-9a-z]{6}\$\+12673800456$/);

    const second = await send({ to: ["+12673800456"], request_id: "req-1", custom_args: { campaign: 7 } });
    expect(second.status).toBe(200);
    expect(second.text).toBe(first.text);
    expect(sandbox.ledger.timesReceived("+12673800456", "legacy")).toBe(1);
    expect(sandbox.ledger.stats().dedupHits).toBe(1);
  });

  it("reports partial success for refused numbers", async () => {
    const result = await send({ to: ["+12673800456", "12", "+12673800455"], request_id: "req-2" });
    expect(result.status).toBe(200);
    expect(result.json).toMatchObject({
      code: 41031,
      message: "partial success",
      success_count: 2,
      failed_count: 1,
      request_id: "req-2",
      failed_items: [{ phone: "12", message: "Invalid phone number format" }],
    });
    expect(result.json.sms_ids).toHaveLength(2);
  });

  it("answers 32002 when every number is refused, and caches that too", async () => {
    sandbox.setOptions({ invalidRate: 1 });
    const refused = await send({ to: ["+12673800456"], request_id: "req-3" });
    expect(refused.status).toBe(400);
    expect(refused.json).toEqual({ code: 32002, message: "Invalid phone number format" });

    sandbox.setOptions({ invalidRate: 0 });
    const replay = await send({ to: ["+12673800456"], request_id: "req-3" });
    expect(replay.status).toBe(400);
    expect(replay.text).toBe(refused.text);
    expect(sandbox.ledger.stats().accepted.legacy).toBe(0);
  });

  it("sends only templates of the legacy store that are approved, and does not remember the refusal", async () => {
    const unknown = await call("/v1/send", {
      body: { to: ["+12673800456"], body: { template_id: 2336 }, request_id: "tpl-1" },
    });
    expect(unknown).toMatchObject({ status: 400, json: { code: 33001, message: "The template does not exist" } });
    const created = await call("/v1/templates", {
      body: { template_name: `send-${Date.now()}`, template_content: "Hi %name%", template_type: "1" },
    });
    const id = (created.json.result as { template_id: number }).template_id;
    const body = { to: ["+12673800456"], body: { template_id: id }, request_id: "tpl-2" };
    const unapproved = await call("/v1/send", { body });
    expect(unapproved).toMatchObject({ status: 400, json: { code: 33002 } });
    expect(sandbox.ledger.stats().accepted.legacy).toBe(0);
    await call(`/_sandbox/templates/${id}/approval`, { body: { approval_status: 1 } });
    const sent = await call("/v1/send", { body });
    expect(sent.status).toBe(200);
    expect(sandbox.ledger.timesReceived("+12673800456", "legacy")).toBe(1);
    await call(`/v1/templates/${id}`, { method: "DELETE" });
  });

  it("validates from, to, template_id and custom_args with code 30001", async () => {
    const badFrom = await send({ from: "a!", to: ["+12673800456"] });
    expect(badFrom.json).toMatchObject({ code: 30001 });
    const noTemplate = await call("/v1/send", { body: { to: ["+12673800456"], body: {} } });
    expect(noTemplate.json).toMatchObject({ code: 30001 });
    expect(noTemplate.json.message).toMatch(/template_id/);
    const bigArgs = await send({ to: ["+12673800456"], custom_args: { blob: "x".repeat(1100) } });
    expect(bigArgs.status).toBe(400);
    expect(bigArgs.json.message).toMatch(/custom_args/);
    const empty = await send({ to: [] });
    expect(empty.json).toMatchObject({ code: 30001 });
  });

  it("refuses vars values over legacyVarMaxChars (16) or with a link, as seed 001 says, and sends nothing", async () => {
    const vars = (value: unknown) =>
      call("/v1/send", { body: { to: ["+12673800456"], body: { template_id: 1, vars: { week: value } } } });
    expect((await vars("x".repeat(16))).status).toBe(200);
    const tooLong = await vars("x".repeat(17));
    expect(tooLong.json.code).toBe(30001);
    expect(tooLong.json.message).toMatch(/week/);
    expect((await vars("see www.shop.sg")).json.message).toMatch(/links/);
    expect((await vars(["ok", "HTTP://x.io"])).json.message).toMatch(/links/);
    expect(sandbox.ledger.timesReceived("+12673800456", "legacy")).toBe(1);
    await call("/_sandbox/config", { body: { legacyVarMaxChars: 0 } });
    expect((await vars("x".repeat(40))).status).toBe(200);
    await call("/_sandbox/config", { body: { legacyVarMaxChars: 16 } });
  });

  it("echoes numbers in sms_ids and failed_items in the form legacyEchoForm says", async () => {
    await call("/_sandbox/config", { body: { legacyEchoForm: "00" } });
    const result = await send({ to: ["+12673800456", "12"] });
    expect(result.json.sms_ids).toEqual([expect.stringMatching(/\$0012673800456$/)]);
    expect(result.json.failed_items).toEqual([{ phone: "0012", message: "Invalid phone number format" }]);
    expect((await call("/_sandbox/config", { body: { legacyEchoForm: "national" } })).status).toBe(400);
    await call("/_sandbox/config", { body: { legacyEchoForm: "as-sent" } });
  });

  it("failNext foreign-answer sends, then answers with another request_id", async () => {
    sandbox.failNext(1, "foreign-answer");
    const result = await send({ to: ["+12673800456"], request_id: "mine" });
    expect(result.json).toMatchObject({ request_id: "someone-else" });
    expect(sandbox.ledger.timesReceived("+12673800456", "legacy")).toBe(1);
  });
});

describe("POST /v1/custom-messages", () => {
  it("sends to an e-mail address over the email channel", async () => {
    const result = await call("/v1/custom-messages", {
      body: { to: "support@example.com", template: { id: "notification-template", params: { order: "1" } } },
    });
    expect(result.status).toBe(200);
    expect(result.json.send_channel).toBe("email");
    expect(result.json.message_id).toMatch(NINETEEN_DIGITS);
    expect(sandbox.ledger.timesReceived("support@example.com", "custom")).toBe(1);
  });

  it("uses the sms channel for phones and requires params.code for code- templates", async () => {
    const sms = await call("/v1/custom-messages", {
      body: { to: "+8618701235678", template: { id: "code-template", params: { code: "123456" } } },
    });
    expect(sms.json.send_channel).toBe("sms");
    const noCode = await call("/v1/custom-messages", { body: { to: "+8618701235678", template: { id: "code-x" } } });
    expect(noCode.status).toBe(400);
    expect(noCode.json.code).toBe(3002);
    const notARecipient = await call("/v1/custom-messages", { body: { to: "nobody", template: { id: "t" } } });
    expect(notARecipient.json.code).toBe(3002);
    const failed = await call("/v1/custom-messages", { body: { to: "+8618701235678", template: { id: "fail-1" } } });
    expect(failed.json).toEqual({ code: 5001, message: "sms send fail" });
  });
});

describe("faults", () => {
  const single = { to: ["+6591234567"], template: { id: "t1" } };

  it("failNext error answers 500/1000 once, then the send goes through", async () => {
    sandbox.failNext(1, "error");
    const failed = await call("/v1/messages", { body: single });
    expect(failed.status).toBe(500);
    expect(failed.json).toMatchObject({ code: 1000, message: "internal error", total_count: 1, accepted_count: 0 });
    expect(sandbox.ledger.timesReceived("+6591234567")).toBe(0);

    const ok = await call("/v1/messages", { body: single });
    expect(ok.status).toBe(200);
    expect(sandbox.ledger.timesReceived("+6591234567")).toBe(1);
    expect(sandbox.ledger.stats().errors).toBe(1);
  });

  // What a real v1/messages account can answer (seed 000), produced on demand.
  it.each([
    ["HTTP 200 with an error code", 200, 5001],
    ["2002 token expired", 401, 2002],
    ["2004 with HTTP 403", 403, 2004],
    ["3003 business validation", 400, 3003],
  ])("failNext reject: %s, in the API's error shape, nothing sent", async (_name, status, code) => {
    await call("/_sandbox/fail-next", { body: { count: 1, kind: "reject", status, code, message: "from the test" } });
    const refused = await call("/v1/messages", { body: single });
    expect(refused.status).toBe(status);
    expect(refused.json).toMatchObject({ code, message: "from the test", total_count: 1, accepted_count: 0 });
    expect(refused.json.plan_id).toEqual(expect.any(String));
    expect(sandbox.ledger.timesReceived("+6591234567")).toBe(0);
    expect(sandbox.ledger.refused("messages").get("+6591234567")).toEqual({ code, times: 1 });
  });

  it("failNext partial-accept sends the first N numbers and says so in an error body", async () => {
    sandbox.failNext(1, "partial-accept", { accepted: 2, status: 500, code: 1000 });
    const to = ["+6591230001", "+6591230002", "+6591230003", "+6591230004", "+6591230005"];
    const answer = await call("/v1/messages", { body: { to, template: { id: "t1" } } });
    expect(answer.status).toBe(500);
    expect(answer.json).toMatchObject({ code: 1000, total_count: 5, accepted_count: 2 });
    expect(Object.keys(sandbox.ledger.sent("messages"))).toEqual(to.slice(0, 2));
    expect(sandbox.ledger.requestLog({ api: "messages" }).at(-1)).toMatchObject({ outcome: "partial", status: 500 });
  });

  it("failNext error-after-send sends everything, then answers 500 with a page that is not JSON", async () => {
    await call("/_sandbox/fail-next", { body: { count: 1, kind: "error-after-send" } });
    const answer = await fetch(`${sandbox.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: AUTH },
      body: JSON.stringify(single),
    });
    expect(answer.status).toBe(500);
    expect(answer.headers.get("content-type")).toMatch(/text\/html/);
    const page = await answer.text();
    expect(() => JSON.parse(page) as unknown).toThrow();
    expect(sandbox.ledger.timesReceived("+6591234567")).toBe(1);
  });

  it("fail-next refuses a fault detail it cannot honour, naming the field", async () => {
    const bad = await call("/_sandbox/fail-next", { body: { count: 1, kind: "reject", status: 99 } });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/status/);
    expect((await call("/_sandbox/fail-next", { body: { count: 1, kind: "nope" } })).json.message).toMatch(/kind/);
    expect((await call("/_sandbox/config")).json).toMatchObject({ pendingFaults: 0 });
  });

  it("throttles with 429 and a Retry-After header", async () => {
    sandbox.setOptions({ retryAfterSeconds: 3 });
    await call("/_sandbox/fail-next", { body: { count: 1, kind: "throttle" } });
    const throttled = await call("/v1/custom-messages", { body: { to: "+8618701235678", template: { id: "t" } } });
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get("retry-after")).toBe("3");
    expect(throttled.json).toEqual({ message: "too many requests" });
    sandbox.setOptions({ retryAfterSeconds: 1 });
  });

  it("lose-response records the send but the client never gets an answer", async () => {
    sandbox.failNext(1, "lose-response");
    const body = { to: ["+12673800456"], body: { template_id: 1 }, request_id: "lost-1" };
    await expect(call("/v1/send", { body })).rejects.toThrow();
    expect(sandbox.ledger.timesReceived("+12673800456", "legacy")).toBe(1);
    expect(sandbox.ledger.stats().lostResponses).toBe(1);

    // The retry is answered from the request_id cache, so nothing is sent twice.
    const retry = await call("/v1/send", { body });
    expect(retry.status).toBe(200);
    expect(sandbox.ledger.timesReceived("+12673800456", "legacy")).toBe(1);
  });

  it("random rates apply through POST /_sandbox/config", async () => {
    const applied = await call("/_sandbox/config", { body: { errorRate: 1 } });
    expect(applied.json).toMatchObject({ ok: true, config: { errorRate: 1 } });
    expect((await call("/v1/messages", { body: single })).status).toBe(500);
    expect((await call("/_sandbox/config", { body: { errorRate: 2 } })).status).toBe(400);
    expect((await call("/_sandbox/config", { body: { apiSecret: "x" } })).status).toBe(400);
  });

  it("adds latency before API responses", async () => {
    sandbox.setOptions({ latencyMs: 60 });
    const started = Date.now();
    await call("/v1/messages", { body: single });
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
  });

  it("a hanging request is ended by close()", async () => {
    const own = await startSandbox({ port: 0, seed: 1 });
    own.failNext(1, "hang");
    const pending = fetch(`${own.url}/v1/messages`, {
      method: "POST",
      headers: { authorization: AUTH, "content-type": "application/json" },
      body: JSON.stringify(single),
    });
    const settled = pending.then(
      () => "answered",
      () => "rejected",
    );
    while (own.ledger.stats().hung === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await own.close();
    expect(await settled).toBe("rejected");
  });
});

describe("/v1/templates", () => {
  it("adds, reads, lists, reviews, modifies, submits and deletes templates", async () => {
    const added = await call("/v1/templates", {
      body: {
        template_name: "bill",
        template_content: "Dear %name%, your bill is ready",
        template_type: "1",
        submit: true,
      },
    });
    expect(added.status).toBe(200);
    const template = added.json.result as Record<string, unknown>;
    expect(template).toMatchObject({ template_name: "bill", msg_type: 2, template_type: 1, approval_status: 0 });
    const id = template.template_id as number;
    expect(id).toBeGreaterThanOrEqual(1000);

    const duplicate = await call("/v1/templates", {
      body: { template_name: "bill", template_content: "other", template_type: "1" },
    });
    expect(duplicate.status).toBe(400);

    const got = await call(`/v1/templates/${id}`);
    expect(got.json.result).toMatchObject({ template_id: id, template_name: "bill" });

    const listed = await call("/v1/templates?template_name=BIL&limit=10");
    expect(listed.json).toMatchObject({ count: 1, total: 1 });
    const preseeded = await call("/v1/templates?template_ids=1&approval_status=1");
    expect(preseeded.json.result).toEqual([
      expect.objectContaining({ template_id: 1, template_name: "sandbox-notice", approval_status: 1 }),
    ]);

    const badLimit = await call("/v1/templates?limit=101");
    expect(badLimit.status).toBe(400);
    expect(badLimit.json).toEqual({ code: 30002, message: "invalid limit" });

    const reviewed = await call(`/_sandbox/templates/${id}/approval`, {
      auth: null,
      body: { approval_status: -1, approval_message: "unclear wording" },
    });
    expect(reviewed.json.result).toMatchObject({ approval_status: -1, approval_message: "unclear wording" });
    await call(`/_sandbox/templates/${id}/approval`, { body: { approval_status: 1 } });

    const renamed = await call(`/v1/templates/${id}`, { method: "PUT", body: { template_name: "bill-2" } });
    expect(renamed.json).toEqual({ count: 1 });
    expect((await call(`/v1/templates/${id}`)).json.result).toMatchObject({
      template_name: "bill-2",
      approval_status: 1,
    });

    await call(`/v1/templates/${id}`, { method: "PUT", body: { template_content: "Dear %name%, pay now" } });
    expect((await call(`/v1/templates/${id}`)).json.result).toMatchObject({ approval_status: -2 });

    const submitted = await call(`/v1/templates/${id}/submit`, { method: "POST" });
    expect(submitted.json).toEqual({});
    expect((await call(`/v1/templates/${id}`)).json.result).toMatchObject({ approval_status: 0 });

    expect((await call(`/v1/templates/${id}`, { method: "DELETE" })).json).toEqual({ count: 1 });
    const gone = await call(`/v1/templates/${id}`);
    expect(gone.status).toBe(400);
    expect(gone.json).toEqual({ code: 33001, message: "The template does not exist" });
  });

  it("validates name length and forbidden content", async () => {
    const longName = await call("/v1/templates", {
      body: { template_name: "n".repeat(65), template_content: "hello", template_type: "0" },
    });
    expect(longName.json).toEqual({ code: 33006, message: "Template name only supports 64 characters" });
    const forbidden = await call("/v1/templates", {
      body: { template_name: "x", template_content: "this is a test", template_type: "0" },
    });
    expect(forbidden.status).toBe(400);
    const badType = await call("/v1/templates", {
      body: { template_name: "y", template_content: "hello", template_type: "7" },
    });
    expect(badType.status).toBe(400);
  });
});

describe("/_sandbox hooks", () => {
  it("reports sent targets, stats and health, and reset clears them but keeps templates", async () => {
    await call("/v1/messages", { body: { to: ["+6591234567", "+6591234568"], template: { id: "t" } } });
    await call("/v1/send", { body: { to: ["+6591234567"], body: { template_id: 1 } } });
    await call("/v1/custom-messages", { body: { to: "a@example.com", template: { id: "t" } } });
    await call("/v1/templates", { body: { template_name: "kept", template_content: "hello", template_type: "2" } });

    expect((await call("/_sandbox/sent")).json).toEqual({ "+6591234567": 2, "+6591234568": 1, "a@example.com": 1 });
    expect((await call("/_sandbox/sent?api=legacy")).json).toEqual({ "+6591234567": 1 });
    expect((await call("/_sandbox/sent?api=nope")).status).toBe(400);

    const stats = (await call("/_sandbox/stats")).json;
    expect(stats).toMatchObject({
      requests: { messages: 1, legacy: 1, custom: 1, templates: 1 },
      accepted: { messages: 2, legacy: 1, custom: 1 },
      uniqueNumbers: 3,
      duplicates: 1,
      errors: 0,
      throttled: 0,
      hung: 0,
      rejectedNumbers: 0,
    });
    expect((await call("/_sandbox/health")).json).toEqual({ ok: true });

    sandbox.failNext(5, "error");
    await call("/_sandbox/reset", { method: "POST" });
    expect((await call("/_sandbox/sent")).json).toEqual({});
    expect((await call("/_sandbox/stats")).json).toMatchObject({ uniqueNumbers: 0, requests: { messages: 0 } });
    expect((await call("/v1/messages", { body: { to: ["+6591234567"], template: { id: "t" } } })).status).toBe(200);
    expect((await call("/v1/templates?template_name=kept")).json).toMatchObject({ total: 1 });
  });
});

describe("sandboxOptionsFromEnv", () => {
  it("reads numbers and rates and names the bad variable", () => {
    expect(
      sandboxOptionsFromEnv({ SANDBOX_PORT: "0", SANDBOX_ERROR_RATE: "0.25", SANDBOX_SEED: "7", SANDBOX_API_KEY: "k" }),
    ).toEqual({ port: 0, errorRate: 0.25, seed: 7, apiKey: "k" });
    expect(sandboxOptionsFromEnv({ SANDBOX_SMS_USER: "u", SANDBOX_SMS_KEY: "k" })).toEqual({
      credentials: { sms: { key: "u", secret: "k" } },
    });
    expect(() => sandboxOptionsFromEnv({ SANDBOX_OTP_KEY: "k" })).toThrow(
      /SANDBOX_OTP_KEY and SANDBOX_OTP_SECRET must be set together/,
    );
    expect(sandboxOptionsFromEnv({})).toEqual({});
    expect(() => sandboxOptionsFromEnv({ SANDBOX_HANG_RATE: "1.5" })).toThrow(/SANDBOX_HANG_RATE/);
    expect(() => sandboxOptionsFromEnv({ SANDBOX_LATENCY_MS: "soon" })).toThrow(/SANDBOX_LATENCY_MS/);
    expect(() => sandboxOptionsFromEnv({ SANDBOX_PORT: "70000" })).toThrow(/SANDBOX_PORT/);
  });
});
