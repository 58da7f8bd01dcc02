import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisConnection } from "../src/queue/redis.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const API_KEY = "key-5c2e8a91d4f7";
const API_SECRET = "secret-0b9d3f6e2a81";
const WRONG_SECRET = "wrong-secret-9d41c7e2";
const BASIC = Buffer.from(`${API_KEY}:${API_SECRET}`).toString("base64");
const WRONG_BASIC = Buffer.from(`${API_KEY}:${WRONG_SECRET}`).toString("base64");
/** Every credential the test used, and the Authorization values built from them. */
const SECRETS = [API_KEY, API_SECRET, BASIC, WRONG_SECRET, WRONG_BASIC, `Basic ${BASIC}`, `Basic ${WRONG_BASIC}`];

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("secrets never leave the process", () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("secrets", { sandbox: { apiKey: API_KEY, apiSecret: API_SECRET } });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("a whole campaign at debug level: the key, the secret and the Basic header appear in no output and no table", async () => {
    const childEnv = {
      ...process.env,
      DATABASE_URL: env.config.databaseUrl,
      REDIS_URL: env.config.redisUrl,
      QUEUE_PREFIX: env.config.queuePrefix,
      ENGAGELAB_MESSAGES_URL: env.sandbox.url,
      ENGAGELAB_SMS_URL: env.sandbox.url,
      ENGAGELAB_OTP_URL: env.sandbox.url,
      ENGAGELAB_API_KEY: API_KEY,
      ENGAGELAB_API_SECRET: API_SECRET,
      LOG_LEVEL: "trace",
    };
    const file = await env.writeCsv(
      "s.csv",
      csvOf(
        ["phone"],
        [...singaporeNumbers(1_200), "junk"].map((n) => [n]),
      ),
    );
    const send = await runCli(["send", file, "--template", "1", "--param", "order=S1", "--wait", "--worker"], childEnv);
    expect(send.code).toBe(0);
    expect(send.output).toMatch(/completed/);
    const one = await runCli(
      ["send-one", "ops@example.com", "--template", "code-otp", "--param", "code=1234"],
      childEnv,
    );
    expect(one.output).toContain('"state":"accepted"');
    // A refused request too: the error path must not echo credentials either.
    const wrong = await runCli(["send-one", "+6581234567", "--template", "x"], {
      ...childEnv,
      ENGAGELAB_API_SECRET: WRONG_SECRET,
    });
    expect(wrong.output).toMatch(/paused|2001|Authentication/);
    const templates = await runCli(["templates", "list"], childEnv);
    expect(templates.code).toBe(0);

    const outputs = send.output + one.output + wrong.output + templates.output;
    expect(outputs.length).toBeGreaterThan(1_000); // debug logging really ran
    for (const secret of SECRETS) expect(outputs).not.toContain(secret);

    const { rows: tables } = await env.db.pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
    );
    let everything = "";
    for (const { table_name } of tables) {
      const { rows } = await env.db.pool.query<{ j: string }>(
        `SELECT row_to_json(t)::text AS j FROM "${table_name}" t`,
      );
      everything += rows.map((r) => r.j).join("\n");
    }
    expect(everything).toContain("+6581000000"); // the dump is real
    for (const secret of SECRETS) expect(everything).not.toContain(secret);

    // Every Redis key under this test's prefix, whatever its type.
    const redis = createRedisConnection(env.config.redisUrl, "producer");
    let redisDump = "";
    let keys = 0;
    try {
      let cursor = "0";
      for (let i = 0; i < 10_000; i++) {
        const [next, batch] = await redis.scan(cursor, "MATCH", `${env.config.queuePrefix}:*`, "COUNT", 500);
        for (const key of batch) {
          keys += 1;
          const type = await redis.type(key);
          const value =
            type === "string"
              ? await redis.get(key)
              : type === "hash"
                ? await redis.hgetall(key)
                : type === "list"
                  ? await redis.lrange(key, 0, -1)
                  : type === "set"
                    ? await redis.smembers(key)
                    : type === "zset"
                      ? await redis.zrange(key, 0, -1, "WITHSCORES")
                      : type === "stream"
                        ? await redis.xrange(key, "-", "+")
                        : type;
          redisDump += `${key} ${JSON.stringify(value)}\n`;
        }
        cursor = next;
        if (cursor === "0") break;
      }
    } finally {
      redis.disconnect();
    }
    expect(keys, "Redis keys under the test's prefix").toBeGreaterThan(0);
    expect(redisDump).toContain(env.config.queuePrefix);
    for (const secret of SECRETS) expect(redisDump).not.toContain(secret);
  }, 180_000);
});
