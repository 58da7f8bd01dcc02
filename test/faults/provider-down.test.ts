// Scenario 6: the provider goes down for 30 s (FAULTS_DOWN_MS) while requests are in flight: every request,
// sends and probes alike, is answered HTTP 500 code 1000 and nothing is sent (the sandbox's `down` knob).
// After 3 failures in a row on the platform the campaign pauses (kind `outage`) instead of spending its
// batches; once the provider answers, the workers' prober resumes it by itself and it completes. Nothing is
// lost or sent twice, and unknowns (if any) lie only in the batches in flight when it went down.
import { afterEach, describe, expect, it } from "vitest";
import { FaultWorld, runScenario, sleep, type Flavour } from "./harness.ts";

const FLAVOURS: Flavour[] = ["legacy", "messages", "custom"];
const DOWN_MS = Number(process.env.FAULTS_DOWN_MS ?? 30_000);

describe.each(FLAVOURS)("fault: provider down %s", (flavour) => {
  let world: FaultWorld | undefined;
  afterEach(async () => {
    await world?.dispose();
    world = undefined;
  });

  it(
    `paused during the outage, resumed by itself after it, completed; nothing lost or sent twice (${DOWN_MS / 1000} s down)`,
    { timeout: DOWN_MS + 180_000 },
    async () => {
      let pausedDuringOutage: { status: string; pause_kind: string | null } | undefined;
      await runScenario(
        "provider-down",
        flavour,
        async (w) => {
          await w.startWorkers();
          await w.launch();
          await w.waitForOpenRequests(1);
          const { sending } = await w.inFlight();
          w.env.sandbox.setOptions({ down: true });
          // Only the batches in flight when it went down may end unknown (their requests were answered 500,
          // so even they should not): every later request is refused before anything is sent.
          await w.recordFault(`provider down ${DOWN_MS / 1000} s`, Date.now(), [], { heldBatches: sending });
          const until = Date.now() + DOWN_MS;
          while (Date.now() < until && !pausedDuringOutage) {
            const { rows } = await w.env.db.pool.query<{ status: string; pause_kind: string | null }>(
              `SELECT status, pause_kind FROM campaigns WHERE id = $1`,
              [w.campaignId],
            );
            if (rows[0]?.status === "paused") pausedDuringOutage = rows[0];
            else await sleep(100);
          }
          await sleep(Math.max(0, until - Date.now()));
          w.env.sandbox.setOptions({ down: false });
        },
        (w) => (world = w),
      );
      expect(pausedDuringOutage, "the campaign paused during the outage").toEqual({
        status: "paused",
        pause_kind: "outage",
      });
      const { rows } = await world!.env.db.pool.query<{ actor: string }>(
        `SELECT actor FROM audit_log WHERE action = 'campaign.auto-resume' AND campaign_id = $1`,
        [world!.campaignId],
      );
      expect(rows.length, "resumed by itself, within AUTO_RESUME_MAX").toBeGreaterThanOrEqual(1);
      expect(rows.every((r) => r.actor === "system:outage-prober")).toBe(true);
    },
  );
});
