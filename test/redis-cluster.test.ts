import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "ioredis";
import { cliEnv, runCli } from "./helpers/cli.ts";
import { sandboxLedger, startWorker, waitForCampaignEnd } from "./helpers/campaign-runner.ts";
import { createTestEnv, singaporeNumbers, waitFor, type TestEnv } from "./helpers/test-env.ts";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const redisCli = (port: number, ...args: string[]) =>
  spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { encoding: "utf8" });

// Issue 17.2: the queue on a Redis Cluster. A local 3-master cluster from Debian's redis-server on loopback
// ports (nothing kept on disk), a campaign sent through it by two workers, each number once.
describe("Redis Cluster", { timeout: 180_000 }, () => {
  const nodes: ChildProcess[] = [];
  const ports: number[] = [];
  let dir: string;
  let env: TestEnv;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "smsblast-cluster-"));
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      ports.push(port);
      nodes.push(
        spawn(
          "redis-server",
          [
            "--port",
            String(port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            `nodes-${port}.conf`,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir,
          ],
          { stdio: "ignore" },
        ),
      );
    }
    for (const port of ports)
      await waitFor(() => Promise.resolve(redisCli(port, "ping").stdout.trim() === "PONG" || undefined), 10_000);
    const created = spawnSync(
      "redis-cli",
      ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"],
      { encoding: "utf8" },
    );
    expect(created.status, created.stdout + created.stderr).toBe(0);
    for (const port of ports)
      await waitFor(
        () => Promise.resolve(/cluster_state:ok/.test(redisCli(port, "cluster", "info").stdout) || undefined),
        20_000,
        200,
      );
    env = await createTestEnv("redis_cluster", {
      env: {
        REDIS_URL: `redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}`,
        BATCH_SIZE: "100",
        // Far above what is sent, so nothing waits: the rate gate's script runs over all its keys at once.
        SEND_RATE_LIMIT: "10000",
        PLATFORM_RATE_LIMITS: "messages=10000",
      },
    });
  });
  afterAll(async () => {
    await env?.cleanup();
    for (const node of nodes) node.kill("SIGKILL");
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a campaign launched by the CLI goes through the cluster, sent by two workers, each number once; the queue's keys share one slot", async () => {
    const numbers = singaporeNumbers(3_000, 73_000);
    const file = await env.writeCsv("list.csv", `phone\n${numbers.join("\n")}\n`);
    const workers = [await startWorker(env), await startWorker(env)];
    try {
      const sent = await runCli(
        ["send", file, "--template", "1", "--no-template-check", "--param", "order=C", "--rate", "100000/s"],
        cliEnv(env, { REDIS_URL: env.config.redisUrl, BATCH_SIZE: "100" }),
      );
      expect(sent.code, sent.output).toBe(0);
      const report = await waitForCampaignEnd(env, sent.stdout.trim(), 90_000);
      expect(report.status).toBe("completed");
      expect(report.recipients).toMatchObject({ total: 3_000, accepted: 3_000 });
    } finally {
      for (const worker of workers) await worker.stop();
    }
    expect(await sandboxLedger(env)).toEqual(Object.fromEntries(numbers.map((n) => [n, 1])));

    // Every key of the queue lives in the slot of the prefix's hash tag (else BullMQ's scripts get CROSSSLOT),
    // the rate gate's pacing keys too (global, platform, campaign), which one script reads and writes together.
    const cluster = new Cluster(ports.map((port) => ({ host: "127.0.0.1", port })));
    try {
      await new Promise((resolve) => cluster.once("ready", resolve));
      const keys: string[] = [];
      for (const node of cluster.nodes("master")) {
        let cursor = "0";
        do {
          const [next, found] = await node.scan(cursor, "MATCH", `${env.config.queuePrefix}:*`, "COUNT", 1000);
          keys.push(...found);
          cursor = next;
        } while (cursor !== "0");
      }
      expect(keys.length).toBeGreaterThanOrEqual(3);
      expect(keys.filter((k) => k.includes(":rate:")).length, keys.join(" ")).toBeGreaterThanOrEqual(3);
      const slots = new Set(await Promise.all(keys.map((k) => cluster.cluster("KEYSLOT", k))));
      expect(slots.size).toBe(1);
    } finally {
      cluster.disconnect();
    }
  });

  it("refuses a REDIS_URL that is neither a Redis nor a cluster URL, naming the forms", async () => {
    const result = await runCli(["campaigns"], cliEnv(env, { REDIS_URL: "redis+cluster:///" }));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "REDIS_URL: must be redis://host:port, rediss://…, or redis+cluster://host:port,host:port",
    );
  });
});
