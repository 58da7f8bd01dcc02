// Scenario 1: kill -9 a worker process while it is mid-request (an open request in the sandbox's log),
// twice, at random moments; restart it each time. The victim's batches stay `sending`; once stale they are
// re-sent (legacy: same request_id, so the sandbox replays; --on-unknown resend: sent again) or marked
// unknown (messages, custom), never sent twice otherwise and never lost. Only the victim's own batches may
// end unknown or be replayed.
import { afterEach, describe, it } from "vitest";
import { FaultWorld, randomBetween, runScenario, SETTINGS, sleep, type Flavour } from "./harness.ts";

const FLAVOURS: Flavour[] = ["legacy", "messages", "messages-resend", "custom"];

describe.each(FLAVOURS)("fault: kill -9 a worker mid-request, twice (%s)", (flavour) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("each victim was mid-request; its batches, and only those, end unknown / replayed / re-sent; nothing lost", async () => {
    await runScenario(
      "kill-9",
      flavour,
      async (w) => {
        await w.startWorkers();
        await w.launch();
        for (let kill = 1; kill <= 2; kill++) {
          await sleep(randomBetween(200, 1_200));
          await w.killAndRestart(randomBetween(0, SETTINGS.workers - 1));
          await w.waitForWorkersConnected(SETTINGS.workers);
        }
      },
      (w) => (world = w),
    );
  });
});
