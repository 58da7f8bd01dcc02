import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestEnv } from "./test-env.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  output: string;
  ms: number;
}

/** The environment a CLI child process needs to use the test's private database, Redis prefix and sandbox. */
export function cliEnv(env: TestEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: env.config.databaseUrl,
    REDIS_URL: env.config.redisUrl,
    QUEUE_PREFIX: env.config.queuePrefix,
    ENGAGELAB_MESSAGES_URL: env.sandbox.url,
    ENGAGELAB_SMS_URL: env.sandbox.url,
    ENGAGELAB_OTP_URL: env.sandbox.url,
    SEND_BACKOFF_MS: "50",
    PROVIDER_TIMEOUT_MS: "3000",
    LOG_LEVEL: "warn",
    ...extra,
  };
}

/** Spawns `smsblast <args>` as its own process (through bin/smsblast.js, as a user runs it). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<CliResult> } {
  const started = Date.now();
  const child = spawn(process.execPath, ["bin/smsblast.js", ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    let output = "";
    child.stdout.on("data", (c: Buffer) => ((stdout += c.toString()), (output += c.toString())));
    child.stderr.on("data", (c: Buffer) => ((stderr += c.toString()), (output += c.toString())));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, output, ms: Date.now() - started });
    });
  });
  return { child, done };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return spawnCli(args, env).done;
}
