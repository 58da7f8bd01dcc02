// The bench's output: one aligned table (figure, value, ceiling or baseline, ratio, target) and a
// CPU-share reading of which process limited each phase.
import type { WindowReport } from "./processes.ts";

export interface Row {
  figure: string;
  value: string;
  ceiling: string;
  ratio: string;
  target: string;
  /** "ok", "MISS" or "" (no target). */
  status: string;
}

export function formatTable(rows: Row[]): string {
  const header: Row = {
    figure: "figure",
    value: "value",
    ceiling: "ceiling / baseline",
    ratio: "ratio",
    target: "target",
    status: "",
  };
  const all = [header, ...rows];
  const keys = ["figure", "value", "ceiling", "ratio", "target", "status"] as const;
  const widths = keys.map((k) => Math.max(...all.map((r) => r[k].length)));
  const right = new Set<string>(["value", "ratio"]);
  const line = (r: Row) =>
    keys
      .map((k, i) => (right.has(k) ? r[k].padStart(widths[i]!) : r[k].padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "─".repeat(w)).join("  ");
  return [line(header), rule, ...rows.map(line)].join("\n");
}

export const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US");
export const fmtRate = (n: number): string => `${fmtInt(n)}/s`;
export const fmtSec = (s: number): string => `${s.toFixed(s < 10 ? 2 : 1)} s`;
export const fmtMb = (mb: number): string => `${Math.round(mb)} MB`;
export const fmtRatio = (r: number): string =>
  r >= 10 ? `${r.toFixed(0)}×` : r >= 1 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`;
export const fmtSize = (n: number): string =>
  n >= 1_000_000 && n % 1_000_000 === 0
    ? `${n / 1_000_000}M`
    : n >= 1000 && n % 1000 === 0
      ? `${n / 1000}k`
      : String(n);

export function check(ok: boolean): string {
  return ok ? "ok" : "MISS";
}

/** Labels of processes that run JavaScript on one main thread (≈1 core is their limit). */
const SINGLE_THREADED = /^(worker#\d+|sandbox|producer|bench|redis|ceiling-client|peer-worker#\d+|peer-producer)$/;

export interface Bottleneck {
  phase: string;
  machineBusyCores: number | undefined;
  /** Cores' worth the hypervisor took away (steal): the machine had that much less to give. */
  machineStealCores: number | undefined;
  cores: Record<string, number>;
  /** The busiest single postgres process (a backend runs one query at a time on one core). */
  busiestPostgresBackend: number;
  verdict: string;
}

/** Steal below this (cores) is not worth a mention: /proc/stat's rounding over a short window. */
const STEAL_SHOWN = 0.05;

/** Reads a phase's CPU shares: a single-threaded process near one core, or the machine out of cores. */
export function judgeBottleneck(phase: string, window: WindowReport, machineCores: number): Bottleneck {
  const tracked = Object.values(window.cores).reduce((sum, c) => sum + c, 0);
  const entries = Object.entries(window.cores).filter(([, c]) => c >= 0.01);
  // Whatever else ran on the machine (kernel, other programs): busy cores not accounted to a watched process.
  if (window.machineBusyCores !== undefined && window.machineBusyCores - tracked >= 0.05) {
    entries.push(["(other)", Math.round((window.machineBusyCores - tracked) * 100) / 100]);
  }
  entries.sort((a, b) => b[1] - a[1]);
  const cores = Object.fromEntries(entries);
  const saturated = entries.filter(([label, c]) => SINGLE_THREADED.test(label) && c >= 0.85);
  const pgBusiest = window.busiestProcess.postgres ?? 0;
  if (pgBusiest >= 0.85) saturated.push(["one postgres backend", pgBusiest]);
  const busy = window.machineBusyCores ?? entries.reduce((sum, [, c]) => sum + c, 0);
  // What the machine could give: its cores less what the hypervisor took (steal).
  const steal = window.machineStealCores ?? 0;
  const available = machineCores - steal;
  const of =
    steal >= STEAL_SHOWN
      ? `${available.toFixed(2)} cores (${steal.toFixed(2)} of ${machineCores} stolen)`
      : `${machineCores} cores`;
  const top = entries
    .slice(0, 3)
    .map(([label, c]) => `${label} ${c.toFixed(2)}`)
    .join(", ");
  let verdict: string;
  if (saturated.length > 0) {
    verdict = `${saturated.map(([l]) => l).join(" + ")} at ~1 core (its event loop is the limit)`;
    if (busy >= 0.85 * available) verdict += `; machine CPU also full (${busy.toFixed(2)}/${of})`;
  } else if (busy >= 0.85 * available) {
    verdict = `machine CPU-bound: ${busy.toFixed(2)}/${of} busy, largest shares ${top}`;
  } else {
    verdict = `not CPU-bound (${busy.toFixed(2)}/${of} busy; largest ${top}): waiting on latency, locks, I/O or the concurrency limit`;
  }
  return {
    phase,
    machineBusyCores: window.machineBusyCores,
    machineStealCores: window.machineStealCores,
    cores,
    busiestPostgresBackend: pgBusiest,
    verdict,
  };
}

export function formatCpuLine(b: Bottleneck): string {
  const shares = Object.entries(b.cores)
    .map(
      ([label, c]) =>
        `${label} ${c.toFixed(2)}${label === "postgres" ? ` (busiest backend ${b.busiestPostgresBackend.toFixed(2)})` : ""}`,
    )
    .join(", ");
  const steal = b.machineStealCores ?? 0;
  const stolen = steal >= STEAL_SHOWN ? ` (${steal.toFixed(2)} more stolen by the hypervisor)` : "";
  const machine = b.machineBusyCores === undefined ? "" : `machine ${b.machineBusyCores.toFixed(2)} cores${stolen}; `;
  return `  ${b.phase}: ${machine}${shares}\n    → ${b.verdict}`;
}
