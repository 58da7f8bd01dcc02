// Scenario 4: a misbehaving provider for the whole campaign: HTTP 500, HTTP 429 with Retry-After: 1,
// requests that hang past the client timeout, and requests whose answer is lost after the send. 500s are
// retried, 429s make every worker back off (no attempt spent, nothing failed), hangs time out, lost
// answers are ambiguous: legacy re-sends under the same request_id (the sandbox replays), messages and
// custom mark only those batches / recipients unknown. The sandbox refuses no number: failed must be 0.
import { afterEach, describe, it } from "vitest";
import { FaultWorld, runScenario, type Flavour } from "./harness.ts";

const FLAVOURS: Flavour[] = ["legacy", "messages", "custom"];
// custom is one request per recipient and a fault stops the rest of its batch (spending an attempt), so
// it gets per-request rates that leave ~1 fault per 100-recipient batch.
const MIX = {
  bulk: { errorRate: 0.2, throttleRate: 0.05, hangRate: 0.02, loseResponseRate: 0.02, retryAfterSeconds: 1 },
  custom: { errorRate: 0.005, throttleRate: 0.01, hangRate: 0.002, loseResponseRate: 0.002, retryAfterSeconds: 1 },
};

describe.each(FLAVOURS)("fault: provider answers 500 / 429 / hangs / loses answers (%s)", (flavour) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("nothing failed, lost or sent twice; unknowns and replays only for hung or lost-response requests", async () => {
    await runScenario(
      "provider-faults",
      flavour,
      async (w) => {
        const mix = flavour === "custom" ? MIX.custom : MIX.bulk;
        w.env.sandbox.setOptions(mix);
        await w.startWorkers();
        w.describeFault(
          `sandbox ${mix.errorRate * 100}% 500, ${mix.throttleRate * 100}% 429, ${mix.hangRate * 100}% hang, ${mix.loseResponseRate * 100}% lost answer`,
        );
        await w.launch();
      },
      (w) => (world = w),
    );
  });
});
