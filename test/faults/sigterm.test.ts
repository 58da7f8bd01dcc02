// Scenario 5: SIGTERM to every worker mid-campaign (a rolling deploy gone wrong), then fresh workers.
// A stopping worker finishes its in-flight batches within the grace period; the new ones take the rest.
import { afterEach, describe, expect, it } from "vitest";
import { FaultWorld, PROVIDERS, randomBetween, runScenario, SETTINGS, sleep } from "./harness.ts";

describe.each(PROVIDERS)("fault: SIGTERM to all workers mid-campaign, then fresh ones (%s)", (provider) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("ends completed with nothing lost, nothing sent twice, unknowns within the in-flight bound", async () => {
    await runScenario("sigterm-all", provider, async (w) => {
      await w.startWorkers();
      await w.launch();
      await sleep(randomBetween(500, 2_500));
      const inFlight = await w.waitForInFlight(3);
      w.recordFault("SIGTERM all workers", inFlight);
      // The grace period is PROVIDER_TIMEOUT_MS + 5 s; a worker still running well after that is a bug.
      const exits = await Promise.all(w.workers.map((worker) => worker.stop("SIGTERM", SETTINGS.providerTimeoutMs + 10_000)));
      expect(exits.map((e) => e.forced), `forced kills after SIGTERM: ${JSON.stringify(exits)}`).toEqual(exits.map(() => false));
      expect(exits.map((e) => e.code)).toEqual(exits.map(() => 0));
      await w.startWorkers();
    }, (w) => (world = w));
  });
});
