// Scenario 5: SIGTERM to every worker while each is mid-request (a rolling deploy gone wrong), then fresh
// workers. A stopping worker finishes its in-flight batches within the grace period: graceful means no
// unknown and no re-sent request (0 request_id replays), not merely "within a bound".
import { afterEach, describe, expect, it } from "vitest";
import { FaultWorld, PROVIDERS, randomBetween, runScenario, SETTINGS, sleep } from "./harness.ts";

describe.each(PROVIDERS)("fault: SIGTERM to all workers mid-request, then fresh ones (%s)", (provider) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("the stopping workers finish what they hold: 0 unknown, 0 replays, nothing lost or sent twice", async () => {
    await runScenario(
      "sigterm-all",
      provider,
      async (w) => {
        await w.startWorkers();
        await w.launch();
        await sleep(randomBetween(500, 2_000));
        const stopping = [...w.workers];
        await w.waitForOpenRequests(stopping.length, stopping);
        const atMs = Date.now();
        // The grace period is PROVIDER_TIMEOUT_MS + 5 s; a worker still running well after that is a bug.
        const stops = stopping.map((worker) => worker.stop("SIGTERM", SETTINGS.providerTimeoutMs + 10_000));
        await w.recordFault("SIGTERM all workers", atMs);
        const exits = await Promise.all(stops);
        expect(
          exits.map((e) => e.forced),
          `forced kills after SIGTERM: ${JSON.stringify(exits)}`,
        ).toEqual(exits.map(() => false));
        expect(exits.map((e) => e.code)).toEqual(exits.map(() => 0));
        await w.startWorkers();
        return { graceful: true };
      },
      (w) => (world = w),
    );
  });
});
