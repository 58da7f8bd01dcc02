// Scenario 3: PostgreSQL restarts mid-campaign. Workers stop taking jobs while it is away, hold on to
// provider answers until they can be recorded, and carry on when it is back.
import { afterEach, describe, it } from "vitest";
import { ensurePostgresUp, FaultWorld, PROVIDERS, randomBetween, runScenario, sleep } from "./harness.ts";

describe.each(PROVIDERS)("fault: PostgreSQL restart mid-campaign (%s)", (provider) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    // Whatever happened, PostgreSQL is up for whoever comes next (dispose checks again).
    await ensurePostgresUp();
    await world?.dispose();
    world = undefined;
  });

  it("ends completed with nothing lost, nothing sent twice, unknowns within the in-flight bound", async () => {
    await runScenario("postgres-restart", provider, async (w) => {
      await w.startWorkers();
      await w.launch();
      await sleep(randomBetween(500, 2_500));
      const inFlight = await w.waitForInFlight(2);
      w.recordFault("PostgreSQL restart", inFlight);
      const how = await w.restartPostgres();
      w.describeFault(how);
    }, (w) => (world = w));
  });
});
