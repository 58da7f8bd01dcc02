// Scenario 2: Redis loses every job mid-campaign (FLUSHALL). Postgres is the truth: the reconciler that
// every worker runs every RECONCILE_INTERVAL_MS re-creates the jobs of open batches and the campaign ends.
import { afterEach, describe, it } from "vitest";
import { FaultWorld, PROVIDERS, randomBetween, runScenario, sleep } from "./harness.ts";

describe.each(PROVIDERS)("fault: FLUSHALL on Redis mid-campaign (%s)", (provider) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("the reconciler finishes the campaign: nothing lost, nothing sent twice", async () => {
    await runScenario("redis-flushall", provider, async (w) => {
      await w.startWorkers();
      await w.launch();
      await sleep(randomBetween(500, 2_500));
      const inFlight = await w.waitForInFlight(2);
      const how = await w.flushRedis();
      w.recordFault(how, inFlight);
    }, (w) => (world = w));
  });
});
