/**
 * `npm run test:faults:mutants`: proves the fault suite catches real bugs. Each patch under
 * test/faults/mutants/ (listed in mutants.json with the scenario that must catch it) is applied to a
 * temporary copy of this tree (node_modules linked, not copied); the copy must still type-check (a
 * mutant is a working program with a bug, not a broken build); then the scenario runs there. The mutant is
 * caught when the scenario fails on an assertion or its deadline. Exit code 0 only when every mutant is
 * caught. Options: a mutant name to run only that one; --keep leaves the copies for inspection.
 *
 * Runs the scenarios as `npm run test:faults` does: scoped faults unless FAULTS_EXCLUSIVE=1 is set.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, symlink, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MUTANTS_DIR = path.join(ROOT, "test", "faults", "mutants");

interface Mutant {
  name: string;
  patch: string;
  bug: string;
  /** Scenario file under test/faults/ and a Vitest -t filter (the flavour) that must catch it. */
  file: string;
  filter: string;
}

interface Outcome {
  mutant: Mutant;
  caught: boolean;
  how: string;
  seconds: number;
}

function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 15 * 60_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (output.length > 2_000_000) output = output.slice(-1_000_000);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The first assertion (or deadline) message of a failed Vitest run, on one line. */
function firstFailure(output: string): string | undefined {
  const plain = output.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "");
  // Only a check of the scenario counts: an assertion, or the campaign missing its deadline. A harness
  // error (workers not connecting on a loaded machine, a setup failure) is not a catch.
  const line = plain.split("\n").find((l) => /AssertionError|not finished within/.test(l));
  return line?.trim().slice(0, 220);
}

async function copyTree(into: string): Promise<void> {
  const { code, output } = await run(
    "rsync",
    [
      "-a",
      "--exclude",
      "/node_modules",
      "--exclude",
      "/.git",
      "--exclude",
      "/bench-results",
      "--exclude",
      "/dist",
      `${ROOT}/`,
      `${into}/`,
    ],
    ROOT,
  );
  if (code !== 0) throw new Error(`rsync failed: ${output}`);
  await symlink(path.join(ROOT, "node_modules"), path.join(into, "node_modules"), "dir");
  await mkdir(path.join(into, "bench-results"), { recursive: true });
}

async function tryMutant(mutant: Mutant, keep: boolean): Promise<Outcome> {
  const started = performance.now();
  const dir = await mkdtemp(path.join(tmpdir(), `smsblast-mutant-${mutant.name}-`));
  const done = (caught: boolean, how: string): Outcome => ({
    mutant,
    caught,
    how,
    seconds: Math.round((performance.now() - started) / 1000),
  });
  try {
    await copyTree(dir);
    const applied = await run(
      "patch",
      ["-p1", "--forward", "--batch", "-i", path.join(MUTANTS_DIR, mutant.patch)],
      dir,
    );
    if (applied.code !== 0)
      return done(false, `patch does not apply: ${applied.output.trim().split("\n").slice(-2).join(" ")}`);
    const typed = await run("npx", ["tsc", "--noEmit"], dir);
    if (typed.code !== 0) return done(false, `mutant does not type-check: ${typed.output.trim().split("\n")[0]}`);
    console.log(`[mutants] ${mutant.name}: running ${mutant.file} -t "${mutant.filter}" in ${dir}`);
    const env = { ...process.env, FAULTS_DEADLINE_MS: process.env.FAULTS_DEADLINE_MS ?? "45000" };
    const result = await run(
      "npx",
      ["vitest", "run", "--config", "vitest.faults.config.ts", `test/faults/${mutant.file}`, "-t", mutant.filter],
      dir,
      env,
    );
    await writeFile(path.join(ROOT, "bench-results", `mutant-${mutant.name}.log`), result.output);
    if (result.code === 0) return done(false, "scenario passed on the mutant");
    const how = firstFailure(result.output);
    return how
      ? done(true, how)
      : done(false, `scenario failed without an assertion (see bench-results/mutant-${mutant.name}.log)`);
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const keep = args.includes("--keep");
  const only = args.filter((a) => !a.startsWith("--"));
  const all = JSON.parse(await readFile(path.join(MUTANTS_DIR, "mutants.json"), "utf8")) as Mutant[];
  const mutants = only.length ? all.filter((m) => only.includes(m.name)) : all;
  if (mutants.length === 0) throw new Error(`no mutant named ${only.join(", ")}`);
  await mkdir(path.join(ROOT, "bench-results"), { recursive: true });
  const outcomes: Outcome[] = [];
  for (const mutant of mutants) {
    const outcome = await tryMutant(mutant, keep);
    console.log(
      `[mutants] ${mutant.name}: ${outcome.caught ? "CAUGHT" : "NOT CAUGHT"} (${outcome.seconds} s) ${outcome.how}`,
    );
    outcomes.push(outcome);
  }
  const rows = outcomes.map(
    (o) =>
      `| ${o.mutant.name} | ${o.mutant.bug} | ${o.mutant.file} (${o.mutant.filter}) | ${o.caught ? "caught" : "**NOT caught**"} | ${o.how.replace(/\|/g, "\\|")} |`,
  );
  const table = ["| mutant | bug | scenario | result | first failure |", "|---|---|---|---|---|", ...rows].join("\n");
  console.log(`\n${table}\n`);
  await writeFile(path.join(ROOT, "bench-results", "mutants-latest.md"), table + "\n");
  process.exitCode = outcomes.every((o) => o.caught) ? 0 : 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
