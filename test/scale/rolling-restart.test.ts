// Scenario: a rolling restart of all four worker hosts one by one, as an orchestrator does: SIGTERM to a
// host's workers while they are mid-request, a clean exit within the grace period, replacements on the
// same host, then the next host. Graceful: 0 unknown, 0 request_id replays, nothing lost or sent twice.
import { afterEach, describe, it } from "vitest";
import { earlyMomentMs, ScaleWorld } from "./harness.ts";
import { sleep } from "../faults/harness.ts";

describe("scale: rolling restart of every worker host with SIGTERM", () => {
  let world: ScaleWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("every stopping worker finishes what it holds: 0 unknown, 0 replays, nothing lost or sent twice", async () => {
    world = await ScaleWorld.create("rolling-restart");
    await world.start();
    await sleep(earlyMomentMs());
    await world.rollingRestart();
    await world.finish({ graceful: true });
  });
});
