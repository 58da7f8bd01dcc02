import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, SANDBOX_API_KEY } from "../src/config/config.ts";

describe("loadConfig", () => {
  it("defaults to the local services and the sandbox provider", () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBe("postgresql://postgres@127.0.0.1:5432/smsblast");
    expect(config.redisUrl).toBe("redis://127.0.0.1:6379");
    expect(config.engagelab.messagesUrl).toBe("http://127.0.0.1:4010");
    expect(config.engagelab.credentials.messages.apiKey).toBe(SANDBOX_API_KEY);
    expect(config.send.batchSize).toBe(1000);
  });

  it("treats empty variables as unset", () => {
    expect(loadConfig({ SEND_CONCURRENCY: "", ENGAGELAB_API_KEY: "" }).send.concurrency).toBe(8);
  });

  it.each([
    ["SEND_CONCURRENCY", "lots"],
    ["SEND_CONCURRENCY", "0"],
    ["DATABASE_URL", "mysql://localhost/x"],
    ["REDIS_URL", "not a url"],
    ["LOG_LEVEL", "verbose"],
    ["BATCH_SIZE", "1001"],
    ["ENGAGELAB_MESSAGES_URL", "ftp://example.com"],
    ["DEFAULT_REGION", "sgp"],
  ])("fails at start-up naming %s when it is %j", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name}:`));
  });
  it("accepts DEFAULT_REGION in either case, as --region is", () => {
    expect(loadConfig({ DEFAULT_REGION: "sg" }).defaultRegion).toBe("SG");
  });

  it("refuses a key without its secret, and does not echo the key", () => {
    const attempt = () => loadConfig({ ENGAGELAB_API_KEY: "k-123456" });
    expect(attempt).toThrow(/ENGAGELAB_API_KEY and ENGAGELAB_API_SECRET must be set together/);
    expect(attempt).not.toThrow(/k-123456/);
  });
});
