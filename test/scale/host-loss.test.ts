// Scenario: a host loss. Every process of one of four hosts is killed at once (SIGKILL to each pid in its
// namespace) while its workers are mid-request on both campaigns; the host is removed and a replacement
// host joins with as many workers. The lost host's batches, and only those, end replayed (legacy) or
// unknown (messages); nothing is lost or sent twice.
import { afterEach, describe, it } from "vitest";
import { earlyMomentMs, ScaleWorld } from "./harness.ts";
import { sleep } from "../faults/harness.ts";

describe("scale: a host lost (every process killed at once), a replacement joins", () => {
  let world: ScaleWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("the lost host's batches, and only those, end replayed / unknown; nothing lost or sent twice", async () => {
    world = await ScaleWorld.create("host-loss", { workers: 8, concurrency: 2 });
    await world.start();
    await sleep(earlyMomentMs());
    await world.loseHost(world.hosts[2]!);
    await world.finish();
  });
});
