import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forgetExpiredUploads } from "../src/campaigns/uploads.ts";
import { suppressNumbers } from "../src/recipients/audience-lists.ts";
import { startApiServer } from "../src/runtime/api-server.ts";
import { startTestApi, type ApiError, type ApiTestServer, type Launched } from "./helpers/api-client.ts";
import { sandboxLedger, startWorker } from "./helpers/campaign-runner.ts";
import { createTestEnv, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";

interface UploadBody {
  uploadId: string;
  sample: string[][];
  rows: number;
  bytes: number;
}
interface CheckBody {
  problems: Array<{ code: string; message: string }>;
  rowErrors: Array<{ row: number; value: string; reason: string }>;
  segments: unknown;
  cost: number;
}
interface ProgressData {
  status: string;
  recipients: Record<string, number>;
}

/** A request whose body the test writes piece by piece; resolves with the status and JSON answer. */
function streamingRequest(url: string, token: string, headers: Record<string, string> = {}) {
  const target = new URL(url);
  const request = http.request({
    host: target.hostname,
    port: target.port,
    path: target.pathname + target.search,
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "text/csv", ...headers },
  });
  const answer = new Promise<{ status: number; body: UploadBody & ApiError }>((resolve, reject) => {
    request.on("response", (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      response.on("end", () =>
        resolve({ status: response.statusCode!, body: (text ? JSON.parse(text) : undefined) as UploadBody & ApiError }),
      );
    });
    request.on("error", reject);
  });
  const write = (chunk: string) =>
    new Promise<void>((resolve) => (request.write(chunk) ? resolve() : request.once("drain", () => resolve())));
  return { request, answer, write };
}

async function readEvents(response: Response): Promise<Array<{ event: string; data: ProgressData }>> {
  const text = await response.text();
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("event:"))
    .map((block) => {
      const [eventLine, dataLine] = block.split("\n");
      return {
        event: eventLine!.slice("event: ".length),
        data: JSON.parse(dataLine!.slice("data: ".length)) as ProgressData,
      };
    });
}

describe("HTTP API uploads: stream, map, check, launch", () => {
  let env: TestEnv;
  let api: ApiTestServer;
  let launchedCampaignId = "";
  const count = async (sql: string) => (await env.db.pool.query<{ n: number }>(sql)).rows[0]!.n;

  beforeAll(async () => {
    env = await createTestEnv("http_uploads", { env: { SMS_SEGMENT_PRICE: "0.05" } });
    api = await startTestApi(env);
  });
  afterAll(async () => {
    await api?.server.stop();
    await env?.cleanup();
  });

  it("runs a whole campaign through the API: upload with bad rows, map, check, launch, events, report", async () => {
    const numbers = singaporeNumbers(12, 500);
    await suppressNumbers(env.db, { phones: [numbers[11]!], reason: "opted out", source: "test" });
    // Excel's sep= line, semicolons, a quoted field with the delimiter in it; local numbers read with region SG.
    const lines = ["sep=;", "Name;Phone;City"];
    numbers.forEach((n, i) =>
      lines.push(`${i % 2 ? "Bob" : "Alice"};${i === 3 ? n.slice(3) : n};"Singapore; central"`),
    );
    lines.push(`Carol;not-a-number;x`, `Dave;${numbers[0]};y`, `Eve;+6512;z`);
    const csv = lines.join("\r\n") + "\r\n";

    const form = new FormData();
    form.append("file", new Blob([csv], { type: "text/csv" }), "list.csv");
    const response = await fetch(`${api.server.url}/api/v1/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${api.tokens.operator}` },
      body: form,
    });
    const uploaded = { status: response.status, body: (await response.json()) as UploadBody };
    expect(uploaded.status).toBe(201);
    expect(uploaded.body).toMatchObject({
      filename: "list.csv",
      columns: ["Name", "Phone", "City"],
      delimiter: ";",
      encoding: "utf-8",
      rows: 15,
      suggestedPhoneColumn: "Phone",
    });
    expect(uploaded.body.sample[0]).toEqual(["Alice", numbers[0], "Singapore; central"]);
    const id = uploaded.body.uploadId;

    const unmapped = await api.json("GET", `/api/v1/uploads/${id}/check`, { token: api.tokens.operator });
    expect(unmapped.body).toMatchObject({ ready: false, problems: [{ code: "no_mapping" }] });
    const badColumn = await api.json<ApiError>("PUT", `/api/v1/uploads/${id}/mapping`, {
      token: api.tokens.operator,
      body: { phoneColumn: "mobile" },
    });
    expect(badColumn.status).toBe(400);
    expect(badColumn.body.error).toMatchObject({ code: "column_not_found", field: "phoneColumn" });

    const mapping = {
      phoneColumn: "phone",
      region: "SG",
      map: { name: "name" },
      templateId: "1",
      templateContent: "Hi {{name}}, your order {{order}} is ready",
    };
    const missingVar = await api.json("PUT", `/api/v1/uploads/${id}/mapping`, {
      token: api.tokens.operator,
      body: mapping,
    });
    expect(missingVar.status).toBe(200);
    const incomplete = await api.json<CheckBody>("GET", `/api/v1/uploads/${id}/check`, { token: api.tokens.operator });
    expect(incomplete.body.problems).toEqual([
      expect.objectContaining({
        code: "missing_variables",
        message: expect.stringContaining("order") as unknown,
      }) as unknown,
    ]);

    expect(
      (
        await api.json("PUT", `/api/v1/uploads/${id}/mapping`, {
          token: api.tokens.operator,
          body: { ...mapping, params: { order: "A-1" } },
        })
      ).status,
    ).toBe(200);
    const check = await api.json<CheckBody>("GET", `/api/v1/uploads/${id}/check`, { token: api.tokens.operator });
    expect(check.status).toBe(200);
    expect(check.body).toMatchObject({
      ready: true,
      problems: [],
      rows: 15,
      valid: 11,
      invalid: 2,
      duplicates: 1,
      suppressed: 1,
      requests: 2,
    });
    expect(check.body.rowErrors).toEqual([
      // Spreadsheet rows: the sep= line is not a row, the header is row 1.
      { row: 13, value: numbers[11], reason: "suppressed" },
      { row: 14, value: "not-a-number", reason: expect.any(String) as unknown },
      { row: 15, value: numbers[0], reason: "duplicate of row 2" },
      { row: 16, value: "+6512", reason: expect.any(String) as unknown },
    ]);
    expect(check.body.segments).toEqual({ total: 11, encoding: null });
    expect(check.body.cost).toBeCloseTo(0.55);

    const preview = await api.json("GET", `/api/v1/uploads/${id}/preview?row=3`, { token: api.tokens.operator });
    expect(preview.body).toMatchObject({
      row: 3,
      text: "Hi Bob, your order A-1 is ready",
      encoding: "GSM-7",
      segments: 1,
      phone: numbers[1],
    });
    expect((await api.json("GET", `/api/v1/uploads/${id}/preview?row=99`, { token: api.tokens.operator })).status).toBe(
      404,
    );

    const rejects = await (
      await api.request("GET", `/api/v1/uploads/${id}/rejects.csv`, { token: api.tokens.operator })
    ).text();
    expect(rejects.trim().split("\n")).toHaveLength(5);

    await fetch(`${env.sandbox.url}/_sandbox/reset`, { method: "POST" });
    const launched = await api.json<Launched>("POST", "/api/v1/campaigns", {
      token: api.tokens.operator,
      body: { uploadId: id, templateId: "1", templateCheck: false },
    });
    expect(launched.status).toBe(201);
    expect(launched.body).toMatchObject({ recipients: 11, rejected: 3, suppressed: 1, duplicates: 1, requests: 2 });
    const campaignId = launched.body.campaignId;
    launchedCampaignId = campaignId;
    const again = await api.json<ApiError>("POST", "/api/v1/campaigns", {
      token: api.tokens.operator,
      body: { uploadId: id, templateId: "1", templateCheck: false },
    });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({
      code: "upload_already_launched",
      message: expect.stringContaining(campaignId) as unknown,
    });

    const worker = await startWorker(env);
    try {
      const events = await readEvents(
        await api.request("GET", `/api/v1/campaigns/${campaignId}/events`, { token: api.tokens.viewer }),
      );
      expect(events.at(-1)).toEqual({ event: "end", data: { status: "completed" } });
      expect(events.at(-2)?.data.recipients).toMatchObject({ total: 11, accepted: 11 });
    } finally {
      await worker.stop();
    }
    const report = await (
      await api.request("GET", `/api/v1/campaigns/${campaignId}/report.csv`, { token: api.tokens.operator })
    ).text();
    expect(report.trim().split("\n")).toHaveLength(12);
    const ledger = await sandboxLedger(env);
    expect(Object.keys(ledger).sort()).toEqual(numbers.slice(0, 11).sort());
    expect(Object.values(ledger).every((times) => times === 1)).toBe(true);
    const { rows } = await env.db.pool.query<{ name: string }>(
      `SELECT DISTINCT params->>'name' AS name FROM batches WHERE campaign_id = $1 ORDER BY 1`,
      [campaignId],
    );
    expect(rows.map((r) => r.name)).toEqual(["Alice", "Bob"]);
  }, 60_000);

  it("stores the first rows of a large upload while the client is still sending, without the 1 MiB body limit", async () => {
    const { answer, write, request } = streamingRequest(
      `${api.server.url}/api/v1/uploads?filename=big.csv`,
      api.tokens.operator,
    );
    const rowsOf = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => `+65${81_000_000 + from + i},row ${from + i}\n`).join("");
    await write("phone,note\n");
    await write(rowsOf(0, 40_000)); // ~1.1 MB
    const storedEarly = await waitFor(async () => {
      const n = await count(
        `SELECT count(*)::int AS n FROM upload_rows r JOIN uploads u ON u.id = r.upload_id WHERE u.filename = 'big.csv'`,
      );
      return n > 0 ? n : undefined;
    }, 20_000);
    expect(storedEarly).toBeGreaterThan(0);
    await write(rowsOf(40_000, 20_000));
    request.end();
    const done = await answer;
    expect(done.status).toBe(201);
    expect(done.body).toMatchObject({ rows: 60_000, columns: ["phone", "note"], suggestedPhoneColumn: "phone" });
    expect(done.body.bytes).toBeGreaterThan(1024 * 1024);
  }, 60_000);

  it("refuses an upload over CSV_MAX_BYTES with 413 naming the limit, and keeps nothing", async () => {
    const small = await startApiServer({ ...env.config, csvMaxBytes: 100_000 }, env.log, {
      host: "127.0.0.1",
      port: 0,
    });
    try {
      const before = await count(`SELECT count(*)::int AS n FROM upload_rows`);
      const uploadsBefore = await count(`SELECT count(*)::int AS n FROM uploads`);
      const body = "phone\n" + singaporeNumbers(20_000).join("\n") + "\n"; // ~240 KB
      // Streamed (no content-length): refused when the bytes arrive, after the first rows were read.
      const streamed = streamingRequest(`${small.url}/api/v1/uploads`, api.tokens.operator);
      streamed.request.on("error", () => {}); // the server may close before the client has written everything
      await streamed.write(body);
      streamed.request.end();
      const refused = await streamed.answer;
      expect(refused.status).toBe(413);
      expect(refused.body.error).toMatchObject({
        code: "upload_too_large",
        message: expect.stringMatching(/100000 bytes.*CSV_MAX_BYTES/) as unknown,
      });
      // Declared too large: refused before reading.
      const declared = await fetch(`${small.url}/api/v1/uploads`, {
        method: "POST",
        headers: { authorization: `Bearer ${api.tokens.operator}`, "content-type": "text/csv" },
        body,
      });
      expect(declared.status).toBe(413);
      expect(((await declared.json()) as ApiError).error.message).toContain("CSV_MAX_BYTES");
      expect(await count(`SELECT count(*)::int AS n FROM upload_rows`)).toBe(before);
      expect(await count(`SELECT count(*)::int AS n FROM uploads`)).toBe(uploadsBefore);
    } finally {
      await small.stop();
    }
  });

  it("refuses a bad file with the line, and deletes expired uploads with their rows", async () => {
    const bad = await api.json<ApiError>("POST", "/api/v1/uploads", {
      token: api.tokens.operator,
      body: 'phone,name\n+6581000000,"open\n',
      headers: { "content-type": "text/csv" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "csv_input", row: 2 });

    const ok = await api.json<UploadBody>("POST", "/api/v1/uploads", {
      token: api.tokens.operator,
      body: "phone\n+6581000001\n",
      headers: { "content-type": "text/csv" },
    });
    expect(ok.status).toBe(201);
    await env.db.pool.query(`UPDATE uploads SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      ok.body.uploadId,
    ]);
    expect(await forgetExpiredUploads(env.db)).toBeGreaterThanOrEqual(1);
    expect(await count(`SELECT count(*)::int AS n FROM upload_rows WHERE upload_id = '${ok.body.uploadId}'`)).toBe(0);
    expect(
      (await api.json("GET", `/api/v1/uploads/${ok.body.uploadId}/check`, { token: api.tokens.operator })).status,
    ).toBe(404);
  });

  it("sends a campaign's message to one number, and manages suppressions and segments, as the CLI does", async () => {
    const test = await api.json<unknown>("POST", `/api/v1/campaigns/${launchedCampaignId}/test`, {
      token: api.tokens.operator,
      body: { to: "81234567", region: "SG", params: { name: "Tess" } },
    });
    expect(test.status).toBe(200);
    expect(test.body).toMatchObject({ to: "+6581234567", state: "accepted", messageId: expect.any(String) as unknown });
    expect(
      (
        await api.json("POST", `/api/v1/campaigns/${launchedCampaignId}/test`, {
          token: api.tokens.viewer,
          body: { to: "+6581234567" },
        })
      ).status,
    ).toBe(403);

    const bad = await api.json<ApiError>("POST", "/api/v1/suppressions", {
      token: api.tokens.operator,
      body: { phones: ["+6581999999", "nope"] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("phone");
    const added = await api.json("POST", "/api/v1/suppressions", {
      token: api.tokens.operator,
      body: { phones: ["+6581999999"], reason: "asked" },
    });
    expect(added.body).toEqual({ added: 1, given: 1 });
    const list = await api.json<{ entries: Array<{ phone: string }> }>("GET", "/api/v1/suppressions?limit=10", {
      token: api.tokens.operator,
    });
    expect(list.body.entries.map((e) => e.phone)).toContain("+6581999999");
    expect((await api.json("GET", "/api/v1/suppressions", { token: api.tokens.viewer })).status).toBe(403);

    expect((await api.json("PUT", "/api/v1/segments/none", { token: api.tokens.operator, body: {} })).status).toBe(400);
    expect(
      (await api.json("PUT", "/api/v1/segments/vips", { token: api.tokens.operator, body: { tags: ["vip"] } })).status,
    ).toBe(200);
    const segments = await api.json<{ segments: unknown[] }>("GET", "/api/v1/segments", { token: api.tokens.viewer });
    expect(segments.body.segments).toEqual([{ name: "vips", tags: ["vip"], attributes: {}, contacts: 0 }]);
  });
});
