import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEnv, ROOT, runCli } from "../helpers/cli.ts";
import { sandboxLedger, startWorker, waitForCampaignEnd } from "../helpers/campaign-runner.ts";
import { createTestEnv, singaporeNumbers, type TestEnv } from "../helpers/test-env.ts";

/** Runs a shell pipeline with the test's environment; `pipefail` makes its status smsblast's own. */
function pipeline(
  command: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-o", "pipefail", "-c", command], { cwd: ROOT, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

// Issue 13.8: reports that round-trip: numbers are not escaped as formulas, rows come in file order,
// `report | head` ends quietly, rejects list duplicates, and row numbers are the spreadsheet's.
describe("reports that round-trip", { timeout: 240_000 }, () => {
  let env: TestEnv;
  let campaignId: string;
  const numbers = singaporeNumbers(3_000, 40_000);

  beforeAll(async () => {
    env = await createTestEnv("reports");
    // Excel's sep= line (not a row), a blank line (a row), a record with a quoted line break (one row), a
    // duplicate, a formula, and two sets of params so batch order is not file order.
    const lines = ["sep=;", "phone;tier;note"];
    numbers.forEach((n, i) => {
      if (i === 1) lines.push("");
      lines.push(`${n};${i % 2 ? "gold" : "silver"};${i === 2 ? '"two\nlines"' : "x"}`);
    });
    lines.push(`${numbers[0]};silver;again`, "=HYPERLINK(1);silver;x");
    const file = await env.writeCsv("list.csv", lines.join("\n") + "\n");
    const sent = await runCli(
      ["send", file, "--template", "1", "--no-template-check", "--map", "tier=tier"],
      cliEnv(env),
    );
    expect(sent.code, sent.output).toBe(0);
    campaignId = sent.stdout.trim();
    const worker = await startWorker(env);
    try {
      await waitForCampaignEnd(env, campaignId);
    } finally {
      await worker.stop();
    }
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("report --csv lists every recipient in file row order with plain numbers, and imports back as a suppression list", async () => {
    const report = await runCli(["report", campaignId, "--csv"], cliEnv(env));
    expect(report.code, report.stderr).toBe(0);
    expect(report.stderr).toContain("3000 recipient(s)");
    const lines = report.stdout.trim().split("\n");
    expect(lines[0]).toBe(
      "row,phone,state,batch,plan_id,sms_id,message_id,send_channel,failure_code,failure_message,delivered_at,delivery_error",
    );
    const rows = lines.slice(1).map((l) => l.split(","));
    expect(rows).toHaveLength(3_000);
    // Header row 1; the blank line after the first data row is row 3; the two-line record counts once.
    expect(rows.slice(0, 4).map((r) => [r[0], r[1]])).toEqual([
      ["2", numbers[0]],
      ["4", numbers[1]],
      ["5", numbers[2]],
      ["6", numbers[3]],
    ]);
    const rowNumbers = rows.map((r) => Number(r[0]));
    expect(rowNumbers).toEqual([...rowNumbers].sort((a, b) => a - b));
    // Batches are by params (silver and gold), so file order is not batch order: the sort above is real.
    expect(new Set(rows.slice(0, 2).map((r) => r[3])).size).toBe(2);
    expect(rows.every((r) => /^\+65\d{8}$/.test(r[1]!) && r[2] === "accepted")).toBe(true);
    expect(new Set(rows.map((r) => r[1])).size).toBe(3_000);
    expect(await sandboxLedger(env)).toEqual(Object.fromEntries(numbers.map((n) => [n, 1])));

    const file = await env.writeCsv("report.csv", report.stdout);
    const imported = await runCli(["suppress", "import", file, "--reason", "round trip"], cliEnv(env));
    expect(imported.code, imported.output).toBe(0);
    expect(imported.stdout).toContain("3000 rows: 3000 numbers added, 0 rejected");
  });

  it("rejects list the duplicate with the row it repeats, and the formula escaped, at spreadsheet rows", async () => {
    const rejects = await runCli(["rejects", campaignId], cliEnv(env));
    expect(rejects.code, rejects.stderr).toBe(0);
    expect(rejects.stdout.trim().split("\n")).toEqual([
      "row,value,reason",
      `3003,${numbers[0]},duplicate of row 2`,
      "3004,'=HYPERLINK(1),phone number contains letters or symbols",
    ]);
  });

  it("report | head ends quietly: exit 0, no error", async () => {
    const result = await pipeline(`node bin/smsblast.js report ${campaignId} | head -3`, cliEnv(env));
    expect(result.stdout.trim().split("\n")).toHaveLength(3);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
  });
});
