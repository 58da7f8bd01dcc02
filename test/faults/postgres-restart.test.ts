// Scenario 3: PostgreSQL restarts mid-campaign while requests are in flight. Under FAULTS_EXCLUSIVE=1 the
// cluster on port 5432 really restarts (the postmaster start time must move forward, never a silent
// downgrade); otherwise this database's backends are terminated. Either way every backend ends, so every
// worker must log that PostgreSQL closed its connections. Workers stop taking jobs, hold provider answers
// until they can be recorded, and carry on. Unknowns and request_id replays may only concern the batches
// in flight when PostgreSQL went away.
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
        const connected = w.workers.filter((worker) => worker.alive);
        const how = await w.restartPostgres();
        await w.recordFault("PostgreSQL restart", atMs, [], { heldBatches: held.sending, untilMs: Date.now() });
        w.describeFault(how);
        // Asserted on the pool's connection-loss line, which every worker holding a connection emits; whether
        // a job also hit the outage ("PostgreSQL is unreachable") depends on timing, so that is only reported.
        await w.expectConnectionLossLogged(connected);
        w.describeFault(
          `${connected.length} worker(s) lost their connections, ${w.workersThatLoggedDisconnect().length} paused`,
        );
        return {};
      },
      (w) => (world = w),
    );
  });
});
