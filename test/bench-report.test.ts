import { describe, expect, it } from "vitest";
import { formatCpuLine, judgeBottleneck } from "../scripts/bench/report.ts";
import type { WindowReport } from "../scripts/bench/processes.ts";

// The benchmark's CPU verdict: steal (cores the hypervisor took) is neither busy nor available.
function window(machineBusyCores: number, machineStealCores: number): WindowReport {
  return {
    seconds: 10,
    cores: { postgres: machineBusyCores - 0.2, "delivery-worker": 0.2 },
    peakRssMb: {},
    busiestProcess: { postgres: 0.8 },
    machineBusyCores,
    machineStealCores,
  };
}

describe("judgeBottleneck with steal", () => {
  it("calls a machine CPU-bound when busy fills what the hypervisor left", () => {
    const b = judgeBottleneck("drain", window(1.5, 0.4), 2);
    expect(b.verdict).toBe(
      "machine CPU-bound: 1.50/1.60 cores (0.40 of 2 stolen) busy, largest shares postgres 1.30, delivery-worker 0.20",
    );
    expect(formatCpuLine(b)).toContain("machine 1.50 cores (0.40 more stolen by the hypervisor);");
  });

  it("does not call 1.5 busy cores of 2 CPU-bound without steal, and prints no steal", () => {
    const b = judgeBottleneck("drain", window(1.5, 0), 2);
    expect(b.verdict).toMatch(/^not CPU-bound \(1\.50\/2 cores busy/);
    expect(formatCpuLine(b)).not.toContain("stolen");
  });
});
