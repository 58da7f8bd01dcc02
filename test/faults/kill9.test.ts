// Scenario 1: kill -9 a worker process in the middle of a batch, twice, at random moments; restart it
// each time. The dead worker's batches stay `sending`; once stale they are re-sent (legacy, same
// request_id) or marked unknown (messages), never sent twice and never lost.
import { afterEach, describe, it } from "vitest";
import { FaultWorld, PROVIDERS, randomBetween, runScenario, SETTINGS, sleep } from "./harness.ts";

describe.each(PROVIDERS)("fault: kill -9 a worker mid-batch, twice (%s)", (provider) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("ends completed with nothing lost, nothing sent twice, unknowns within the in-flight bound", async () => {
    await runScenario("kill-9", provider, async (w) => {
      await w.startWorkers();
      await w.launch();
      for (let kill = 1; kill <= 2; kill++) {
        await sleep(randomBetween(200, 1_500));
        const slot = randomBetween(0, SETTINGS.workers - 1);
        // 3 fresh claims with 2 workers × 2 slots: the victim is mid-request.
        const inFlight = await w.waitForInFlight(3);
        w.recordFault(`kill -9 w${slot}`, inFlight);
        await w.killAndRestart(slot);
        await w.waitForWorkersConnected(SETTINGS.workers);
      }
    }, (w) => (world = w));
  });
});
