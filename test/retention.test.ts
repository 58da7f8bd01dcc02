import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signIn } from "../src/access/console-sessions.ts";
import { SESSION_COOKIE } from "../src/http/auth.ts";
import { startScheduledPurge } from "../src/runtime/scheduled-purge.ts";
import { ConfigError, loadConfig } from "../src/config/config.ts";
import { PhoneHasher } from "../src/model/phone-hash.ts";
import { parseDuration } from "../src/model/duration.ts";
import { applyStoredEvents, KEYS_OF_JSON } from "../src/store/delivery-repository.ts";
import { hashInSql } from "../src/store/forgotten-number-repository.ts";
import { withTransaction } from "../src/store/database.ts";
import { countUpload } from "../src/store/upload-repository.ts";
import { startTestApi, type ApiTestServer } from "./helpers/api-client.ts";
import { cliEnv, runCli, spawnCli } from "./helpers/cli.ts";
import { createTestEnv, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";

// Issue 17.5: old campaigns do not slow new ones (`smsblast purge`, and its scheduled twin), and a person's
// erasure request (`smsblast forget`). Real PostgreSQL, Redis, sandbox and CLI processes.

const SECRET = "retention-test-secret-0123456789abcdef";
const hasher = new PhoneHasher(SECRET);

describe("durations and settings", () => {
  it("reads 90d, 12h, 1d12h; refuses nonsense and zero", () => {
    expect(parseDuration("90d")).toBe(90 * 86_400_000);
    expect(parseDuration("1d12h")).toBe(36 * 3_600_000);
    expect(parseDuration("2W")).toBe(14 * 86_400_000);
    for (const bad of ["", "30", "30x", "0d", "-1d", "1.5d", "d"]) expect(parseDuration(bad)).toBeNull();
  });

  it("names PURGE_OLDER_THAN and SUPPRESSION_HASH_SECRET when they are wrong, and never shows the secret", () => {
    expect(() => loadConfig({ PURGE_OLDER_THAN: "three months" })).toThrow(ConfigError);
    expect(() => loadConfig({ PURGE_OLDER_THAN: "three months" })).toThrow(
      /PURGE_OLDER_THAN: must be a duration above zero such as 90d/,
    );
    expect(() => loadConfig({ SUPPRESSION_HASH_SECRET: "short" })).toThrow(
      /SUPPRESSION_HASH_SECRET: must be at least 32/,
    );
    const config = loadConfig({ PURGE_OLDER_THAN: "30d", SUPPRESSION_HASH_SECRET: SECRET });
    expect(config.retention.purgeOlderThanMs).toBe(30 * 86_400_000);
    expect(JSON.stringify(config)).not.toContain(SECRET);
    expect(JSON.stringify(config.privacy)).toBe(`{"phoneHasher":{"keyId":"${hasher.keyId}"}}`);
  });
});

describe("purge and forget", { timeout: 300_000 }, () => {
  let env: TestEnv;
  let api: ApiTestServer;
  const cli = (args: string[], extra: Record<string, string> = {}) =>
    runCli(args, cliEnv(env, { BATCH_SIZE: "50", SUPPRESSION_HASH_SECRET: SECRET, ...extra }));
  const cliWithoutSecret = (args: string[]) => runCli(args, cliEnv(env, { BATCH_SIZE: "50" }));
  const sql = async <T extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = []) =>
    (await env.db.pool.query<T>(text, values)).rows;
  const launch = async (name: string, lines: string[], args: string[] = []) => {
    const file = await env.writeCsv(`${name}.csv`, `phone\n${lines.join("\n")}\n`);
    const run = await cli([
      "send",
      file,
      "--name",
      name,
      "--template",
      "1",
      "--no-template-check",
      "--param",
      "order=A",
      ...args,
    ]);
    expect(run.code, run.output).toBe(0);
    return run.stdout.trim().split("\n").at(-1)!;
  };
  const recipientsOf = async (id: string) =>
    Number((await sql<{ n: string }>(`SELECT count(*) AS n FROM recipients WHERE campaign_id = $1`, [id]))[0]!.n);
  const statusJson = async (id: string) => {
    const run = await cli(["status", id, "--json"]);
    expect(run.code, run.output).toBe(0);
    return JSON.parse(run.stdout) as Record<string, unknown> & { recipients: Record<string, number> };
  };

  // X: the person who asks to be forgotten. In a finished campaign (in national form, plus a duplicate in
  // international form: a reject), pending in a running one, a contact, suppressed, in raw callbacks and in an upload.
  const X = singaporeNumbers(1, 90_000)[0]!; // +6581090000
  const xNational = "8109 0000";
  const oldNumbers = singaporeNumbers(250, 10_000);
  let oldId: string; // completed 100 days ago: purged
  let recentId: string; // completed now: kept
  let withX: string; // completed, contains X
  let runningWithX: string;
  let runningId: string;
  let scheduledId: string;
  let pausedId: string;
  let uploadOfOld: string;
  let suppressedAt: Date;

  beforeAll(async () => {
    env = await createTestEnv("retention", { env: { SUPPRESSION_HASH_SECRET: SECRET } });
    // Finished campaigns first (each with its own worker, which stops with the command): queued jobs of the
    // running ones below must not be sent by any worker.
    oldId = await launch("old", [...oldNumbers, "12", oldNumbers[0]!], ["--wait", "--worker"]);
    recentId = await launch("recent", singaporeNumbers(20, 20_000), ["--wait", "--worker"]);
    withX = await launch(
      "with-x",
      [xNational, ...singaporeNumbers(5, 30_000), `+65 ${xNational}`],
      ["--region", "SG", "--wait", "--worker"],
    );
    runningWithX = await launch("running-with-x", [X, ...singaporeNumbers(5, 31_000)]);
    const contacts = await env.writeCsv(
      "contacts.csv",
      `phone,first_name\n${X},Xavier\n${singaporeNumbers(1, 32_000)[0]},Yan\n`,
    );
    expect((await cli(["contacts", "import", contacts, "--tag", "vip"])).code).toBe(0);
    expect((await cli(["suppress", "add", X, "--reason", "complaint"])).code).toBe(0);
    suppressedAt = (await sql<{ created_at: Date }>(`SELECT created_at FROM suppressions WHERE phone = $1`, [X]))[0]!
      .created_at;

    runningId = await launch("running", singaporeNumbers(120, 40_000));
    scheduledId = await launch("scheduled", singaporeNumbers(60, 41_000), [
      "--at",
      new Date(Date.now() + 7 * 86_400_000).toISOString(),
    ]);
    pausedId = await launch("paused", singaporeNumbers(60, 42_000));
    expect((await cli(["pause", pausedId])).code).toBe(0);

    // Age: the old campaign finished 100 days ago; the unfinished ones were created as long ago (age alone
    // must never make them purgeable).
    await sql(
      `UPDATE campaigns SET finished_at = now() - interval '100 days', created_at = now() - interval '101 days' WHERE id = $1`,
      [oldId],
    );
    await sql(`UPDATE campaigns SET created_at = now() - interval '101 days' WHERE id = ANY($1::uuid[])`, [
      [runningId, scheduledId, pausedId],
    ]);
    // Raw callbacks and an upload of the old campaign; raw callbacks and an upload row holding X.
    await sql(
      `INSERT INTO delivery_events (source, row, campaign_id, outcome, applied_at) VALUES
         ('engagelab', jsonb_build_object('to', $2::text, 'status', jsonb_build_object('message_status', 'delivered')), $1, 'applied', now()),
         ('engagelab', jsonb_build_object('to', $3::text), $1, 'applied', now()),
         ('engagelab', jsonb_build_object('to', $4::text, 'status', jsonb_build_object('message_status', 'delivered')), $5, 'applied', now()),
         ('engagelab', jsonb_build_object('type', 'uplink', 'from', $6::text, 'content', 'thanks'), NULL, 'ignored', now()),
         ('engagelab', jsonb_build_object('to', $7::text), NULL, 'applied', now())`,
      [oldId, oldNumbers[0], oldNumbers[1], X, withX, X.slice(1), "+6581099999"],
    );
    // A whole callback as the receiver stores it (the rows as an array, with their keys) holding X and another number.
    await sql(
      `INSERT INTO delivery_events (source, row, row_count, outcome, events)
       SELECT 'engagelab', r, 2, 'received', ${KEYS_OF_JSON("r")}
       FROM (SELECT jsonb_build_array(jsonb_build_object('to', $1::text, 'status', jsonb_build_object('message_status', 'sent')),
                                      jsonb_build_object('to', '6581099997', 'status', jsonb_build_object('message_status', 'sent'))) AS r) s`,
      [X.slice(1)],
    );
    uploadOfOld = (
      await sql<{ id: string }>(
        `INSERT INTO uploads (created_by, columns, delimiter, encoding, expires_at, status, campaign_id, row_count)
         VALUES ('test', '{phone}', ',', 'utf-8', now() + interval '1 day', 'launched', $1, 2) RETURNING id`,
        [oldId],
      )
    )[0]!.id;
    await sql(`INSERT INTO upload_rows (upload_id, row, cells) VALUES ($1, 1, ARRAY[$2]), ($1, 2, ARRAY[$3])`, [
      uploadOfOld,
      oldNumbers[0],
      oldNumbers[1],
    ]);
    const otherUpload = (
      await sql<{ id: string }>(
        `INSERT INTO uploads (created_by, columns, delimiter, encoding, expires_at, status, row_count)
         VALUES ('test', '{phone,name}', ',', 'utf-8', now() + interval '1 day', 'ready', 2) RETURNING id`,
      )
    )[0]!.id;
    await sql(
      `INSERT INTO upload_rows (upload_id, row, cells) VALUES ($1, 1, ARRAY['(+65) 8109-0000', 'Xavier']), ($1, 2, ARRAY['+6581099998', 'Zoe'])`,
      [otherUpload],
    );
    await sql(`INSERT INTO upload_judgements (upload_id, row, phone) VALUES ($1, 1, $2), ($1, 2, '+6581099998')`, [
      otherUpload,
      X,
    ]);
    api = await startTestApi(env);
    // A dozen CLI processes, three of them with a worker: more than the default hook timeout on a busy machine.
  }, 240_000);
  afterAll(async () => {
    await api?.server.stop();
    await env?.cleanup();
  });

  it("refuses bad durations and a missing one, naming the flag or the setting", async () => {
    const bad = await cli(["purge", "--older-than", "30x"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(
      '--older-than must be a duration above zero such as 90d, 12h, 2w or 1d12h (units s, m, h, d, w), got "30x"',
    );
    const zero = await cli(["purge", "--older-than", "0d"]);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain('got "0d"');
    const missing = await cli(["purge"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("give --older-than <duration> (e.g. 90d), or set PURGE_OLDER_THAN");
    const setting = await cli(["purge"], { PURGE_OLDER_THAN: "soon" });
    expect(setting.code).toBe(1);
    expect(setting.stderr).toContain("PURGE_OLDER_THAN: must be a duration above zero");
  });

  it("purges the detail of old finished campaigns only, in chunks, keeping their rows and counts", async () => {
    const before = await statusJson(oldId);
    expect(before.recipients.total).toBe(250);
    const listed = async () =>
      (JSON.parse((await cli(["campaigns", "--json", "--limit", "50"])).stdout) as Array<{ id: string }>).find(
        (c) => c.id === oldId,
      );
    const listBefore = await listed();
    const untouched = { running: runningId, scheduled: scheduledId, paused: pausedId, recent: recentId, withX };
    const countsBefore = Object.fromEntries(
      await Promise.all(Object.entries(untouched).map(async ([k, id]) => [k, await recipientsOf(id)] as const)),
    );

    const dry = await cli(["purge", "--older-than", "30d", "--dry-run"]);
    expect(dry.code, dry.output).toBe(0);
    expect(dry.stdout).toMatch(
      /dry run: 1 campaign\(s\) finished before .* would lose their recipient detail: about 252 recipient and reject rows; nothing was deleted/,
    );
    expect(await recipientsOf(oldId)).toBe(250);

    const purge = await cli(["purge", "--older-than", "30d", "--chunk-rows", "100", "--vacuum"]);
    expect(purge.code, purge.output).toBe(0);
    expect(purge.stdout).toMatch(
      /purged 1 campaign\(s\) finished before .* \(older than 30d\): 250 recipients, 2 rejects, 2 delivery events, 2 upload rows deleted in [\d.]+ s; their counts are kept/,
    );
    expect(purge.stdout).toMatch(/vacuumed in [\d.]+ s: recipients /);

    expect(await recipientsOf(oldId)).toBe(0);
    expect(await sql(`SELECT 1 FROM rejects WHERE campaign_id = $1`, [oldId])).toEqual([]);
    expect(await sql(`SELECT 1 FROM delivery_events WHERE campaign_id = $1`, [oldId])).toEqual([]);
    expect(
      await sql(`SELECT 1 FROM uploads WHERE id = $1 UNION ALL SELECT 1 FROM upload_rows WHERE upload_id = $1`, [
        uploadOfOld,
      ]),
    ).toEqual([]);
    // The campaign row and every count shown for it stay the same.
    const after = await statusJson(oldId);
    expect(before.purgedAt).toBeNull();
    expect(after.purgedAt).toEqual(expect.stringMatching(/^\d{4}-/));
    expect({ ...after, purgedAt: null }).toEqual(before);
    expect(await listed()).toEqual(listBefore);
    const resource = await api.json<Record<string, unknown>>("GET", `/api/v1/campaigns/${oldId}`);
    expect(resource.status).toBe(200);
    expect(resource.body).toEqual(after);
    // Detail exports say it was purged, rather than print an empty file.
    const report = await cli(["report", oldId]);
    expect(report.code).toBe(1);
    expect(report.stdout).toBe("");
    expect(report.stderr).toMatch(
      new RegExp(
        `campaign ${oldId}'s recipient detail was purged on \\S+ \\(smsblast purge\\): there is no recipient left to report; its counts are kept`,
      ),
    );
    expect((await cli(["rejects", oldId])).stderr).toContain("its rejected rows are gone");
    expect((await cli(["retry-failed", oldId])).stderr).toContain("its failed recipients cannot be sent again");
    const csv = await api.json<{ error: { code: string } }>("GET", `/api/v1/campaigns/${oldId}/report.csv`);
    expect(csv.status).toBe(410);
    expect(csv.body.error.code).toBe("campaign_purged");
    expect((await cli(["status", oldId])).stdout).toMatch(/purged {5}\S+: recipient detail deleted \(smsblast purge\)/);
    // The console's campaign page: the kept counts, and no download links to empty files.
    const session = await signIn(env.db, api.tokens.viewer);
    const page = await fetch(`${api.server.url}/campaigns/${oldId}`, {
      headers: { cookie: `${SESSION_COOKIE}=${session.secret}` },
    });
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain("The recipient detail of this campaign was purged on");
    expect(html).not.toContain(`/api/v1/campaigns/${oldId}/report.csv`);

    // Running, scheduled, paused (old as they are) and recently finished campaigns keep everything.
    for (const [k, id] of Object.entries(untouched)) expect(await recipientsOf(id), k).toBe(countsBefore[k]);
    expect((await statusJson(runningId)).status).toBe("running");

    const again = await cli(["purge", "--older-than", "30d"]);
    expect(again.stdout).toContain("purged 0 campaign(s)");
    const audit = await sql<{ actor: string; details: Record<string, unknown> }>(
      `SELECT actor, details FROM audit_log WHERE action = 'retention.purge' ORDER BY id`,
    );
    expect(audit[0]?.details).toMatchObject({ olderThan: "30d", campaigns: 1, recipients: 250, rejects: 2 });
  });

  it("runs the same purge on the scheduler's timer with PURGE_OLDER_THAN", async () => {
    await sql(`UPDATE campaigns SET finished_at = now() - interval '40 days' WHERE id = $1`, [recentId]);
    const scheduled = startScheduledPurge(
      env.db,
      {
        ...env.config,
        retention: { purgeOlderThanMs: parseDuration("30d")!, purgeIntervalMs: 60_000, purgeChunkRows: 1000 },
      },
      env.log,
    );
    try {
      await waitFor(async () =>
        (await sql(`SELECT 1 FROM campaigns WHERE id = $1 AND purged_at IS NOT NULL`, [recentId])).length
          ? true
          : undefined,
      );
    } finally {
      await scheduled?.stop();
    }
    expect(await recipientsOf(recentId)).toBe(0);
    expect((await statusJson(recentId)).recipients.total).toBe(20);
    expect(await recipientsOf(runningId)).toBe(120);
    const audit = await sql(`SELECT 1 FROM audit_log WHERE action = 'retention.purge' AND actor = 'system:purge'`);
    expect(audit.length).toBe(1);
  });

  it("forget needs the secret and a valid number", async () => {
    const noSecret = await cliWithoutSecret(["forget", X]);
    expect(noSecret.code).toBe(1);
    expect(noSecret.stderr).toContain("forget needs SUPPRESSION_HASH_SECRET");
    const invalid = await cli(["forget", "12"]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('"12" is not a valid phone number');
  });

  it("forget erases the number from every table, keeps it suppressed as a keyed hash, and audits it without the number", async () => {
    const runningStatus = await statusJson(runningWithX);
    const forget = await cli(["forget", xNational, "--region", "SG"]);
    expect(forget.code, forget.output).toBe(0);
    expect(forget.stdout).toContain(
      "the number was erased: 2 recipient row(s) in 2 campaign(s) (1 not sent yet, now cancelled), 1 reject(s), 1 upload row(s), 3 delivery event(s), 1 contact(s)",
    );
    expect(forget.stdout).toContain(
      `it stays suppressed, now as a keyed hash only (suppressed since ${suppressedAt.toISOString()}, complaint)`,
    );
    expect(forget.output).not.toContain("81090000");

    // No table holds the number in any form (whole rows as text: every column; 81090000, 8109 0000, 8109-0000).
    for (const table of [
      "recipients",
      "rejects",
      "contacts",
      "suppressions",
      "delivery_events",
      "upload_rows",
      "upload_judgements",
      "audit_log",
      "campaigns",
      "batches",
    ]) {
      const hits = await sql(`SELECT 1 FROM ${table} t WHERE t::text ~ '8109[^0-9]?0000'`);
      expect(hits.length, table).toBe(0);
    }
    // Other people's rows are still there.
    expect((await sql(`SELECT 1 FROM delivery_events WHERE row->>'to' = '+6581099999'`)).length).toBe(1);
    // From the callback row only X's event went, with its key; the other event is still there to be applied.
    expect(
      await sql(
        `SELECT row_count, jsonb_array_length(row) AS len, (events[1]).phone FROM delivery_events WHERE row @> '[{"to": "6581099997"}]'`,
      ),
    ).toEqual([{ row_count: 1, len: 1, phone: "+6581099997" }]);
    expect((await sql(`SELECT 1 FROM upload_judgements WHERE phone = '+6581099998'`)).length).toBe(1);

    // Suppressed as its HMAC, with when and why it was suppressed.
    const entry = await sql<{ phone: string; reason: string; created_at: Date; hmac_key_id: string }>(
      `SELECT phone, reason, created_at, hmac_key_id FROM suppressions WHERE phone_hmac = $1`,
      [hasher.hash(X)],
    );
    expect(entry).toEqual([
      {
        phone: `forgotten:${hasher.hash(X)}`,
        reason: "complaint",
        created_at: suppressedAt,
        hmac_key_id: hasher.keyId,
      },
    ]);
    // The running campaign keeps its counts; its pending row for X is cancelled and will never be sent.
    const running = await statusJson(runningWithX);
    expect(running.recipients.total).toBe(runningStatus.recipients.total);
    expect(running.recipients.cancelled).toBe(1);
    const erased = await sql<{ phone: string; failure_message: string }>(
      `SELECT phone, failure_message FROM recipients WHERE campaign_id = $1 AND state = 'cancelled'`,
      [runningWithX],
    );
    expect(erased[0]?.phone).toMatch(/^erased:[0-9a-f-]{36}$/);
    expect(erased[0]?.failure_message).toBe("number erased on request before it was sent");

    const audit = await sql<{ details: Record<string, unknown> }>(
      `SELECT details FROM audit_log WHERE action = 'phone.forget'`,
    );
    expect(audit).toEqual([
      {
        details: {
          recipients: 2,
          campaigns: 2,
          cancelledPending: 1,
          rejects: 1,
          uploadRows: 1,
          deliveryEvents: 3,
          contacts: 1,
          suppression: "hashed",
          suppressedAt: suppressedAt.toISOString(),
        },
      },
    ]);
  });

  it("a forgotten number stays suppressed: a later campaign, suppress add, the upload check and STOP replies honour its hash", async () => {
    const later = await env.writeCsv("later.csv", `phone\n${xNational}\n${singaporeNumbers(3, 50_000).join("\n")}\n`);
    const sent = await cli([
      "send",
      later,
      "--region",
      "SG",
      "--template",
      "1",
      "--no-template-check",
      "--param",
      "order=B",
    ]);
    expect(sent.code, sent.output).toBe(0);
    expect(sent.stderr).toContain(
      "3 recipients in 1 requests (4 rows, 1 rejected of which 1 suppressed, 0 duplicates)",
    );
    const laterId = sent.stdout.trim();
    // Its reject keeps no trace of the number either.
    const rejects = await cli(["rejects", laterId]);
    expect(rejects.stdout).toBe("row,value,reason\n2,(forgotten number),suppressed\n");

    const add = await cli(["suppress", "add", X]);
    expect(add.stdout).toContain("0 number(s) added to the suppression list (1 already there)");
    expect(await sql(`SELECT 1 FROM suppressions WHERE phone = $1`, [X])).toEqual([]);
    expect((await cli(["suppress", "list"])).stdout).toContain("and 1 forgotten number(s), suppressed as keyed hashes");

    // The upload check counts it as suppressed.
    const upload = (
      await sql<{ id: string }>(
        `INSERT INTO uploads (created_by, columns, delimiter, encoding, expires_at, status, row_count)
         VALUES ('test', '{phone}', ',', 'utf-8', now() + interval '1 day', 'ready', 2) RETURNING id`,
      )
    )[0]!.id;
    await sql(`INSERT INTO upload_rows (upload_id, row, cells) VALUES ($1, 1, ARRAY['x']), ($1, 2, ARRAY['y'])`, [
      upload,
    ]);
    await sql(`INSERT INTO upload_judgements (upload_id, row, phone) VALUES ($1, 1, $2), ($1, 2, '+6581099997')`, [
      upload,
      X,
    ]);
    const counts = await countUpload(env.db, upload, {
      variables: [],
      columnIndexes: [],
      batchSize: 1000,
      groupByParams: false,
    });
    expect(counts).toMatchObject({ rows: 2, suppressed: 1, valid: 1 });
    await sql(`DELETE FROM uploads WHERE id = $1`, [upload]);

    // A STOP reply from it adds no plain-text entry.
    await sql(
      `INSERT INTO delivery_events (source, row) VALUES ('engagelab', jsonb_build_object('type', 'uplink', 'from', $1::text, 'content', 'STOP'))`,
      [X],
    );
    const applied = await applyStoredEvents(env.db, { limit: 100, retryDelayMs: 1000, giveUpAfterMs: 60_000 });
    expect(applied.optOuts).toBe(0);
    expect(await sql(`SELECT 1 FROM suppressions WHERE phone = $1`, [X])).toEqual([]);
    await sql(`DELETE FROM delivery_events WHERE row->>'type' = 'uplink'`);

    // The SQL form of the HMAC (launches, upload checks) is the JS one.
    await withTransaction(env.db.pool, async (client) => {
      expect(await hashInSql(client, hasher, X)).toBe(hasher.hash(X));
    });
  });

  it("without the secret, launches refuse rather than text a forgotten number, and suppress remove says why", async () => {
    const file = await env.writeCsv("nosecret.csv", `phone\n${singaporeNumbers(2, 60_000).join("\n")}\n`);
    const refused = await cliWithoutSecret([
      "send",
      file,
      "--template",
      "1",
      "--no-template-check",
      "--param",
      "order=C",
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      "this launch needs SUPPRESSION_HASH_SECRET: the suppression list keeps 1 forgotten number(s) (smsblast forget) only as keyed hashes",
    );
    const otherKey = await cli(["send", file, "--template", "1", "--no-template-check", "--param", "order=C"], {
      SUPPRESSION_HASH_SECRET: "another-secret-0123456789abcdef-xyz",
    });
    expect(otherKey.code).toBe(1);
    expect(otherKey.stderr).toContain(`hashed under another SUPPRESSION_HASH_SECRET (key id ${hasher.keyId}`);

    const remove = await cliWithoutSecret(["suppress", "remove", X]);
    expect(remove.code).toBe(1);
    expect(remove.stderr).toContain(
      `${X} is not on the suppression list in plain text; 1 forgotten number(s) are kept only as keyed hashes, set SUPPRESSION_HASH_SECRET to look among them`,
    );
  });

  it("forget waits for a launch in progress, then erases what it stored", async () => {
    const Y = singaporeNumbers(1, 91_000)[0]!;
    const launching = await env.db.pool.connect();
    try {
      await launching.query("BEGIN");
      await launching.query(`SELECT pg_advisory_xact_lock_shared(7308901234567001)`);
      const { child, done } = spawnCli(["forget", Y], cliEnv(env, { SUPPRESSION_HASH_SECRET: SECRET }));
      let stderr = "";
      child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
      await waitFor(
        () => Promise.resolve(stderr.includes("waiting for the campaign launches in progress") || undefined),
        20_000,
      );
      await launching.query("COMMIT");
      const result = await done;
      expect(result.code, result.output).toBe(0);
      expect(result.stdout).toContain("it is suppressed from now on, as a keyed hash only (erasure request)");
    } finally {
      launching.release();
    }
  });

  it("suppress remove with the secret takes a forgotten number off the list", async () => {
    const remove = await cli(["suppress", "remove", X]);
    expect(remove.code, remove.output).toBe(0);
    expect(remove.stdout).toMatch(
      new RegExp(`\\${X} removed from the suppression list \\(was: complaint; kept as a keyed hash since \\S+\\)`),
    );
    expect(await sql(`SELECT 1 FROM suppressions WHERE phone_hmac = $1`, [hasher.hash(X)])).toEqual([]);
  });
});
