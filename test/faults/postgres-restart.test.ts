// Scenario 3: PostgreSQL restarts mid-campaign while requests are in flight. Under FAULTS_EXCLUSIVE=1 the
// cluster on port 5432 really restarts (the postmaster start time must move forward, never a silent
// downgrade) and the workers must log that they lost it; otherwise this database's backends are
// terminated. Workers stop taking jobs, hold provider answers until they can be recorded, and carry on.
// Unknowns and request_id replays may only concern the batches in flight when PostgreSQL went away.
import { afterEach, describe, it } from "vitest";
import { ensurePostgresUp, EXCLUSIVE, FaultWorld, PROVIDERS, randomBetween, runScenario, sleep } from "./harness.ts";

describe.each(PROVIDERS)("fault: PostgreSQL restart mid-campaign (%s)", (provider) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    // Whatever happened, PostgreSQL is up for whoever comes next (dispose checks again).
    await ensurePostgresUp();
    await world?.dispose();
    world = undefined;
  });

  it("workers wait it out and finish: unknowns and replays only among the batches in flight, nothing lost or sent twice", async () => {
    await runScenario(
      "postgres-restart",
      provider,
      async (w) => {
        await w.startWorkers();
        await w.launch();
        await sleep(randomBetween(500, 2_000));
        await w.waitForOpenRequests(2);
        const atMs = Date.now();
        const held = await w.inFlight(atMs);
        const how = await w.restartPostgres();
        await w.recordFault("PostgreSQL restart", atMs, [], { heldBatches: held.sending, untilMs: Date.now() });
        w.describeFault(how);
        if (EXCLUSIVE) {
          // Bounded: a restart takes seconds and every worker polls; give the logs a moment to arrive. A
          // worker whose jobs were all inside provider calls during a fast restart never touches PostgreSQL
          // while it is down, so this is reported, not asserted (issue 11 point 4 is open on it).
          for (let i = 0; i < 50 && w.workersThatLoggedDisconnect().length === 0; i++) await sleep(100);
          w.describeFault(`${w.workersThatLoggedDisconnect().length} worker(s) logged the disconnect`);
        }
        return {};
      },
      (w) => (world = w),
    );
  });
});
