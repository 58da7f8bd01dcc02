// When a campaign paused by a provider outage may resume by itself (src/campaigns/outage-prober.ts): pure.
import { describe, expect, it } from "vitest";
import { AUTO_RESUME_BACKOFF_CAP_MS, decideAutoResume } from "../src/campaigns/outage-prober.ts";

const PAUSED = new Date("2026-12-01T10:00:00.000Z");
const policy = { max: 5, backoffMs: 30_000 };

describe("decideAutoResume", () => {
  it.each([
    [0, 30_000],
    [1, 60_000],
    [2, 120_000],
    [3, 240_000],
    [4, 480_000],
  ])("after %i automatic resumes it waits %i ms after the pause, then probes", (autoResumes, waitMs) => {
    const at = PAUSED.getTime();
    expect(decideAutoResume({ autoResumes, pausedAt: PAUSED }, at + waitMs - 1, policy)).toEqual({
      kind: "wait",
      untilMs: at + waitMs,
    });
    expect(decideAutoResume({ autoResumes, pausedAt: PAUSED }, at + waitMs, policy)).toEqual({ kind: "probe" });
  });

  it("gives up at AUTO_RESUME_MAX: the campaign waits for `smsblast resume`", () => {
    const later = PAUSED.getTime() + 24 * 3600_000;
    expect(decideAutoResume({ autoResumes: 5, pausedAt: PAUSED }, later, policy)).toEqual({ kind: "give-up" });
    expect(decideAutoResume({ autoResumes: 0, pausedAt: PAUSED }, later, { ...policy, max: 0 })).toEqual({
      kind: "give-up",
    });
  });

  it("caps the back-off", () => {
    const decision = decideAutoResume({ autoResumes: 9, pausedAt: PAUSED }, PAUSED.getTime(), {
      max: 20,
      backoffMs: 30_000,
    });
    expect(decision).toEqual({ kind: "wait", untilMs: PAUSED.getTime() + AUTO_RESUME_BACKOFF_CAP_MS });
  });
});
