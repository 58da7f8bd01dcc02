// Runs once in the main Vitest process around the whole fault suite: starts a fresh results file and
// prints every run's row as one table at the end (the lead pastes it from here or from the JSON file).
import { formatTable, readResultsFile, resetResultsFile, RESULTS_FILE } from "./harness.ts";

export async function setup(): Promise<void> {
  // One seed for every file, so a failing run can be replayed with FAULTS_SEED=<seed>.
  process.env.FAULTS_SEED ??= String(Math.floor(Math.random() * 2 ** 31));
  await resetResultsFile();
}

export async function teardown(): Promise<void> {
  const results = await readResultsFile();
  if (!results || results.rows.length === 0) return;
  const total = results.rows.reduce((sum, r) => sum + r.wallSeconds, 0);
  console.log(
    `\nFault suite (seed ${results.seed ?? process.env.FAULTS_SEED}), ${results.rows.length} runs, ` +
      `campaign wall time ${total.toFixed(1)} s in all; rows in ${RESULTS_FILE}\n${formatTable(results.rows)}\n`,
  );
}
