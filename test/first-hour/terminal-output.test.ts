import { spawn } from "node:child_process";
import stringWidth from "string-width";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, ROOT, runCli } from "../helpers/cli.ts";
import { createTestEnv, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

// Issue 13.11 and 13.12: output that cannot be abused or broken, and a progress bar that tells the truth.
describe("terminal output", { timeout: 240_000 }, () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv("terminal-output");
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("--version prints the package version", async () => {
    const result = await runCli(["--version"], cliEnv(env));
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("0.1.0\n");
  });

  it("every command taking a campaign id answers a malformed or unknown id as status does", async () => {
    const status = await runCli(["status", "garbage!"], cliEnv(env));
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/^smsblast: .*garbage!.*\n$/);
    for (const command of ["reconcile", "pause", "resume", "cancel", "report", "rejects", "watch", "retry-failed"]) {
      const malformed = await runCli([command, "garbage!"], cliEnv(env));
      expect([command, malformed.code, malformed.stderr]).toEqual([command, 1, status.stderr]);
      expect(malformed.stdout).toBe("");
    }
    const unknownId = "00000000-0000-4000-8000-000000000000";
    const known = await runCli(["status", unknownId], cliEnv(env));
    expect(known.code).toBe(1);
    const reconciled = await runCli(["reconcile", unknownId], cliEnv(env));
    expect([reconciled.code, reconciled.stderr]).toEqual([1, known.stderr]);
  });

  it("campaign names cannot inject terminal escapes, forge lines or reorder text; tables align wide characters", async () => {
    const evil = "evil\u001b[31mRED\u001b]0;title\u0007\nforged line\u202eesrever";
    const party = "🎉 パーティー";
    const file = await env.writeCsv("names.csv", `phone\n${singaporeNumbers(1, 65_000)[0]}\n`);
    const first = await runCli(
      ["send", file, "--template", "1", "--no-template-check", "--name", evil, "--dry-run"],
      cliEnv(env),
    );
    expect(first.code, first.output).toBe(0);
    const stored = await runCli(["send", file, "--template", "1", "--no-template-check", "--name", evil], cliEnv(env));
    expect(stored.code, stored.output).toBe(0);
    const second = await runCli(
      ["send", file, "--template", "1", "--no-template-check", "--name", party, "--allow-repeat"],
      cliEnv(env),
    );
    expect(second.code, second.output).toBe(0);

    const status = await runCli(["status", stored.stdout.trim()], cliEnv(env));
    expect(status.stdout).toContain('"evil\\x1b[31mRED\\x1b]0;title\\x07\\nforged line\\u202eesrever"');
    const listed = await runCli(["campaigns"], cliEnv(env));
    for (const output of [status.stdout, listed.stdout]) {
      // eslint-disable-next-line no-control-regex
      expect(output).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e\u2066-\u2069]/);
      expect(output).not.toContain("\nforged line");
    }
    // Every row's third column starts at the same display column as the header's.
    const lines = listed.stdout.trimEnd().split("\n");
    const headerCut = lines[0]!.indexOf("status");
    const partyLine = lines.find((l) => l.includes(party))!;
    const namePart = partyLine.slice(
      0,
      partyLine.indexOf("completed") >= 0 ? partyLine.indexOf("completed") : partyLine.indexOf("running"),
    );
    expect(stringWidth(namePart)).toBe(headerCut);
  });

  it("the progress bar says paused with the reason, never a NaN or infinite ETA", async () => {
    const file = await env.writeCsv("paused.csv", `phone\n${singaporeNumbers(3, 66_000).join("\n")}\n`);
    const result = await runCli(
      ["send", file, "--template", "1", "--no-template-check", "--allow-repeat", "--wait", "--worker"],
      cliEnv(env, { ENGAGELAB_API_KEY: "wrong-key", ENGAGELAB_API_SECRET: "wrong-secret" }),
    );
    expect(result.code, result.output).toBe(6);
    expect(result.stderr).toMatch(/\| 0\/s \| paused: provider refused the account \(code 2001\)/);
    expect(result.stderr).not.toMatch(/ETA (NaN|NF|LL|Infinity|∞)/);
  });

  it("on a terminal, a log line prints above the bar, which is drawn again below it", async () => {
    const file = await env.writeCsv("tty.csv", `phone\n${singaporeNumbers(3, 67_000).join("\n")}\n`);
    // The refusal comes after the bar is up: the provider answers after 1.5 s.
    const config = (knobs: object) =>
      fetch(`${env.sandbox.url}/_sandbox/config`, { method: "POST", body: JSON.stringify(knobs) });
    await config({ latencyMs: 1_500 });
    // script(1) gives the command a pseudo-terminal, as a person's shell does.
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(
        "script",
        [
          "-qec",
          `node bin/smsblast.js send ${file} --template 1 --no-template-check --allow-repeat --wait --worker`,
          "/dev/null",
        ],
        { cwd: ROOT, env: cliEnv(env, { ENGAGELAB_API_KEY: "wrong-key", ENGAGELAB_API_SECRET: "wrong-secret" }) },
      );
      let text = "";
      child.stdout.on("data", (c: Buffer) => (text += c.toString()));
      child.on("error", reject);
      child.on("exit", () => resolve(text));
    }).finally(() => config({ latencyMs: 0 }));
    // The warning starts on a cleared line (not glued to the bar), and the bar comes back after it.
    // eslint-disable-next-line no-control-regex
    expect(output).toMatch(/\r\x1b\[2K\{"level":50,[^\n]*"msg":"campaign paused[^\n]*\r?\n[^\n]*░/);
  });
});
