// Scenario: 8 worker processes on 4 hosts share one global SEND_RATE_LIMIT, kept in Redis and reached
// through each host's relay. Measured by the sandbox's own arrival times over both campaigns, from the
// moment after the launches when this process (the sandbox's clock, and every relay) has kept time for a
// second again (what its lag held back is delivered by then: see LoopLagMonitor.calmSince), to
// the last request: the mean rate over at least 30 s is within 10 % of the limit, and no 1-second window
// (sliding over every arrival) holds more than 1.5× the limit.
import { afterEach, describe, expect, it } from "vitest";
import { LoopLagMonitor, measureRate, ScaleWorld } from "./harness.ts";

/** 600 requests at 15/s: 40 s of sending; 8 × 4 in flight could send twice as fast, so the limit is what paces. */
const RATE_LIMIT = 15;

describe("scale: 8 worker processes share one global SEND_RATE_LIMIT", () => {
  let world: ScaleWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it(`the sandbox sees ${RATE_LIMIT}/s ± 10 % over ≥ 30 s, never more than 1.5× in any second`, async () => {
    world = await ScaleWorld.create("rate-limit", {
      workers: 8,
      concurrency: 4,
      rateLimit: RATE_LIMIT,
      latencyMs: 200,
    });
    const loop = new LoopLagMonitor();
    try {
      await world.start();
      await Promise.all(world.runs.map((run) => run.waitForFinal()));
    } finally {
      loop.stop();
    }
    const from = loop.calmSince(world.launchedAt) ?? world.launchedAt;
    const rate = measureRate(world.requestTimes(from));
    const summary =
      `SEND_RATE_LIMIT ${RATE_LIMIT}/s: ${rate.mean.toFixed(2)}/s ` +
      `(${(((rate.mean - RATE_LIMIT) / RATE_LIMIT) * 100).toFixed(1)} %) over ${rate.seconds.toFixed(1)} s ` +
      `from +${((from - world.launchedAt) / 1000).toFixed(1)} s after the launch, busiest second ${rate.busiestSecond} ` +
      `(${(rate.busiestSecond / RATE_LIMIT).toFixed(2)}×)`;
    world.describeFault(summary);
    const worst = loop.worstSince(from);
    world.fleet.note(
      `rate-limit: ${summary}; per second: ${rate.perSecond.join(" ")}; this process's worst event-loop lag ` +
        `${worst.lagMs} ms, at +${((worst.at - from) / 1000).toFixed(1)} s`,
    );
    await world.finish({ graceful: true });
    expect(rate.seconds, summary).toBeGreaterThanOrEqual(30);
    expect(Math.abs(rate.mean - RATE_LIMIT) / RATE_LIMIT, summary).toBeLessThanOrEqual(0.1);
    expect(rate.busiestSecond, summary).toBeLessThanOrEqual(1.5 * RATE_LIMIT);
  });
});
