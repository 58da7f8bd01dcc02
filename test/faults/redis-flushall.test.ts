// Scenario 2: Redis loses every job mid-campaign (FLUSHALL under FAULTS_EXCLUSIVE=1, else this run's keys),
// at a moment when requests are in flight and at least one batch waits in `retrying` (its delayed job is
// lost too). Postgres is the truth: the reconciler re-creates the jobs of every open batch, `retrying`
// ones included. Workers keep their in-flight batches: no unknown, no re-sent request.
import { afterEach, describe, expect, it } from "vitest";
import { FaultWorld, PROVIDERS, randomBetween, runScenario, sleep } from "./harness.ts";

describe.each(PROVIDERS)("fault: FLUSHALL on Redis mid-campaign (%s)", (provider) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("the reconciler finishes the campaign, retrying batches included: 0 unknown, 0 replays, nothing lost", async () => {
    await runScenario(
      "redis-flushall",
      provider,
      async (w) => {
        await w.startWorkers();
        await w.launch();
        await sleep(randomBetween(500, 2_000));
        await w.waitForOpenRequests(2);
        // The next requests get HTTP 500: their batches go `retrying` with a delayed job, which the flush loses.
        w.env.sandbox.failNext(3, "error");
        // Both at the same look: a batch retrying AND a request open. The failed requests end at once, so
        // the first retrying batch can show up just when no other request happens to be open (seen in CI).
        let retrying = 0;
        let open = 0;
        for (let i = 0; i < 2_000 && (retrying === 0 || open === 0); i++) {
          const { rows } = await w.env.db.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM batches WHERE campaign_id = $1 AND state = 'retrying'`,
            [w.campaignId],
          );
          retrying = rows[0]!.n;
          open = w.openRequestCount();
          if (retrying === 0 || open === 0) await sleep(5);
        }
        expect(retrying, "a batch in `retrying` when Redis is flushed").toBeGreaterThan(0);
        expect(open, "a request in flight when Redis is flushed").toBeGreaterThan(0);
        const atMs = Date.now();
        const how = await w.flushRedis();
        await w.recordFault(`${how} with ${retrying} batch(es) retrying`, atMs);
        return { graceful: true };
      },
      (w) => (world = w),
    );
  });
});
