import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, spawnCli } from "../helpers/cli.ts";
import { createTestEnv, waitFor, type TestEnv } from "../helpers/test-env.ts";

describe("smsblast serve on an empty database", () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv("console_first_run");
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  /** Starts `smsblast serve --port 0`, waits for its address line, stops it; returns what it printed. */
  async function serveOnce(): Promise<{ stdout: string; url: string }> {
    const { child, done } = spawnCli(["serve", "--port", "0"], cliEnv(env));
    let stdout = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    const url = await waitFor(() => Promise.resolve(/console and API on (http:\/\/\S+?)\//.exec(stdout)?.[1]), 30_000);
    const token = /^\s+(smsb_\S+)$/m.exec(stdout)?.[1];
    if (token) {
      const response = await fetch(`${url}/api/v1/tokens`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(200); // an admin's route
    }
    child.kill("SIGTERM");
    const result = await done;
    expect(result.code).toBe(0);
    return { stdout, url };
  }

  it("prints a first-run admin token once, and never again", async () => {
    const first = await serveOnce();
    expect(first.stdout).toContain('an admin token named "first-run-admin" was created');
    expect(first.stdout).toMatch(/^\s+smsb_[\w-]{43}$/m);
    expect(first.stdout).toContain(`Sign in to the web console at ${first.url}/`);
    const second = await serveOnce();
    expect(second.stdout).not.toMatch(/smsb_/);
    const stored = await env.db.pool.query<{ name: string; role: string }>("SELECT name, role FROM api_tokens");
    expect(stored.rows).toEqual([{ name: "first-run-admin", role: "admin" }]);
  });
});
