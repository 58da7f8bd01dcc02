// Scenario 4: a misbehaving provider for the whole campaign: 20 % HTTP 500, 5 % HTTP 429 with
// Retry-After: 1, 2 % requests that hang past the client timeout. 500s are retried, 429s make every worker
// back off, hangs time out: legacy re-sends under the same request_id, messages marks the batch unknown.
import { afterEach, describe, it } from "vitest";
import { FaultWorld, PROVIDERS, runScenario, SETTINGS } from "./harness.ts";

describe.each(PROVIDERS)("fault: provider answers 500 / 429 / hangs (%s)", (provider) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it("ends completed with nothing lost, nothing sent twice, unknowns only from hung requests", async () => {
    await runScenario("provider-faults", provider, async (w) => {
      w.env.sandbox.setOptions({ errorRate: 0.2, throttleRate: 0.05, hangRate: 0.02, retryAfterSeconds: 1 });
      await w.startWorkers();
      w.describeFault("sandbox 20% 500, 5% 429, 2% hang");
      await w.launch();
      // Hangs are the only unknowns messages may have: each hung request can leave one batch unknown.
      return { unknownBound: () => w.env.sandbox.ledger.stats().hung * SETTINGS.batchSize };
    }, (w) => (world = w));
  });
});
