// Runs once in the main Vitest process around the whole scale suite: checks that worker hosts can be made
// here (root, `ip netns`), takes the `sbscale-` prefix, removes a crashed run's leftovers, starts a fresh
// results file; at the end prints every run's row as one table and removes every namespace and veth.
import { formatTable, readResultsFile, resetResultsFile } from "../faults/harness.ts";
import { SCALE, SCALE_RESULTS_FILE } from "./harness.ts";
import {
  acquireNetworkLock,
  assertSubnetFree,
  checkNetnsSupport,
  installCleanupHooks,
  releaseNetworkLock,
  removeAllScaleNetworks,
} from "./network.ts";

let startedAt = 0;

export async function setup(): Promise<void> {
  startedAt = performance.now();
  await checkNetnsSupport();
  acquireNetworkLock();
  installCleanupHooks();
  const leftovers = removeAllScaleNetworks();
  if (leftovers.length) console.log(`scale suite: removed leftovers of an earlier run: ${leftovers.join(", ")}`);
  assertSubnetFree();
  process.env.FAULTS_SEED ??= String(Math.floor(Math.random() * 2 ** 31));
  await resetResultsFile(SCALE_RESULTS_FILE, SCALE);
}

export async function teardown(): Promise<void> {
  removeAllScaleNetworks();
  releaseNetworkLock();
  const results = await readResultsFile(SCALE_RESULTS_FILE);
  if (!results || results.rows.length === 0) return;
  const wall = (performance.now() - startedAt) / 1000;
  console.log(
    `\nScale suite (seed ${results.seed ?? process.env.FAULTS_SEED}), ${results.rows.length} runs, ` +
      `${wall.toFixed(0)} s in all; rows in ${SCALE_RESULTS_FILE}\n${formatTable(results.rows)}\n`,
  );
}
