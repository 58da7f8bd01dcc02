// Scenario: four worker hosts; one is cut off for 20 s mid-campaign while its workers are mid-request on
// both campaigns, then comes back. `stall`: its connections hang (packets dropped), so its BullMQ locks
// lapse and its claims go stale while it still holds them; `reset`: every connection gets an RST and new
// ones are refused. Other hosts take its batches over (legacy: the same request_id, replayed; messages:
// unknown, never re-sent); the host, back, must not send any of them again, and sends new batches.
import { afterEach, describe, it } from "vitest";
import { earlyMomentMs, ScaleWorld } from "./harness.ts";
import { sleep } from "../faults/harness.ts";

describe.each(["stall", "reset"] as const)("scale: one of 4 hosts cut off for 20 s (%s)", (mode) => {
  let world: ScaleWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("its batches, and only those, end replayed / unknown; nothing lost or sent twice; it sends again", async () => {
    world = await ScaleWorld.create(`cut-off-${mode}`);
    await world.start();
    await sleep(earlyMomentMs());
    await world.cutOff(world.hosts[1]!, mode);
    await world.finish();
  });
});
