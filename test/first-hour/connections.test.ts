import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, runCli } from "../helpers/cli.ts";
import { sandboxLedger } from "../helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.1: an unreachable Redis or PostgreSQL fails the command before anything is stored, in one line
// naming the service and its URL without credentials; a missing or unmigrated database names `migrate`.
describe("unreachable Redis or PostgreSQL", { timeout: 180_000 }, () => {
  let env: TestEnv;
  let file: string;
  const emptyDb = `smsblast_test_unmigrated_${process.pid}`;
  beforeAll(async () => {
    env = await createTestEnv("connections");
    file = await env.writeCsv(
      "list.csv",
      csvOf(
        ["phone"],
        singaporeNumbers(5).map((n) => [n]),
      ),
    );
    const admin = new pg.Client({ connectionString: env.config.databaseUrl.replace(/\/[^/]*$/, "/postgres") });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${emptyDb}"`);
    await admin.end();
  });
  afterAll(async () => {
    const admin = new pg.Client({ connectionString: env.config.databaseUrl.replace(/\/[^/]*$/, "/postgres") });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${emptyDb}" WITH (FORCE)`);
    await admin.end();
    await env?.cleanup();
  });

  const storedCampaigns = async () =>
    Number((await env.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM campaigns`)).rows[0]!.n);
  const send = ["send", "--template", "1", "--no-template-check"];

  it("send with REDIS_URL on a dead port: refused in one line naming Redis, nothing stored, nothing sent", async () => {
    const result = await runCli(
      [...send, file],
      cliEnv(env, { REDIS_URL: "redis://user:hunter2@127.0.0.1:1/0", CONNECT_TIMEOUT_MS: "2000" }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^smsblast: Redis at redis:\/\/127\.0\.0\.1:1\/0 \(REDIS_URL\) is unreachable .*Nothing was stored$/,
    );
    expect(result.output).not.toContain("hunter2");
    expect(result.stdout).toBe("");
    expect(await storedCampaigns()).toBe(0);
    expect(await sandboxLedger(env)).toEqual({});
  });

  it("a dead PostgreSQL port, a missing database, a missing role: one line each, no stack trace", async () => {
    const base = env.config.databaseUrl;
    const cases: Array<[string, RegExp]> = [
      [
        base.replace("127.0.0.1:5432", "127.0.0.1:1"),
        /^smsblast: PostgreSQL at postgresql:\/\/127\.0\.0\.1:1\/\S+ \(DATABASE_URL\) is unreachable/,
      ],
      [
        base.replace(/\/[^/]*$/, "/smsblast_no_such_db"),
        /^smsblast: PostgreSQL at .*: database "smsblast_no_such_db" does not exist; run `smsblast migrate`/,
      ],
      [
        base.replace("postgres@", "no_such_role:pw-s3cret@"),
        /^smsblast: PostgreSQL at postgresql:\/\/127\.0\.0\.1:5432\/\S+ \(DATABASE_URL\) refused the connection: .*no_such_role/,
      ],
    ];
    for (const [url, message] of cases) {
      const result = await runCli([...send, file], cliEnv(env, { DATABASE_URL: url, CONNECT_TIMEOUT_MS: "2000" }));
      expect(result.code, result.output).toBe(1);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(message);
      expect(result.output).not.toContain("pw-s3cret");
      expect(result.output).not.toMatch(/\n\s+at /);
    }
    expect(await storedCampaigns()).toBe(0);
    expect(await sandboxLedger(env)).toEqual({});
  });

  it("an unmigrated database names `smsblast migrate`", async () => {
    const result = await runCli(
      [...send, file],
      cliEnv(env, { DATABASE_URL: env.config.databaseUrl.replace(/\/[^/]*$/, `/${emptyDb}`) }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/run `smsblast migrate` first/);
  });

  it("a worker with a dead Redis exits at start-up naming it instead of waiting for ever", async () => {
    const result = await runCli(
      ["worker"],
      cliEnv(env, { REDIS_URL: "redis://127.0.0.1:1", CONNECT_TIMEOUT_MS: "2000" }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Redis at redis:\/\/127\.0\.0\.1:1 \(REDIS_URL\) is unreachable/);
  });
});
