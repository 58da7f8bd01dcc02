import { existsSync } from "node:fs";
import { join } from "node:path";
// Child processes of the benchmark (spawned as `node --import tsx <script>`, so the pid we watch is the
// process doing the work, not an npx wrapper) and a sampler of their memory and CPU read from /proc.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface ChildHandle {
  name: string;
  pid: number;
  process: ChildProcess;
  /** Everything written to stdout / stderr so far (stderr capped at 64 KB). */
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isRunning(): boolean;
}

/** Every child the bench started; `killAll` is called on any exit path (normal end, error, Ctrl-C). */
export class ChildSet {
  private readonly children = new Set<ChildHandle>();

  spawnTs(name: string, script: string, args: string[], env: NodeJS.ProcessEnv): ChildHandle {
    // Production runs compiled JavaScript (`npm run build`); measure that when it is there, since the tsx
    // loader alone adds ~35 MB to every process.
    const compiled = join(PROJECT_ROOT, "dist", script.replace(/\.ts$/, ".js"));
    // BENCH_NODE_ARGS: flags for every child's node (NODE_OPTIONS refuses some), e.g. "--trace-gc" or
    // "--cpu-prof --cpu-prof-dir=/tmp/prof" (a V8 CPU profile per child when it exits, for Chrome DevTools).
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
    const argv = [...nodeArgs, ...(existsSync(compiled) ? [compiled, ...args] : ["--import", "tsx", script, ...args])];
    const proc = spawn(process.execPath, argv, {
      cwd: PROJECT_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (proc.pid === undefined) throw new Error(`could not start ${name}`);
    let out = "";
    let err = "";
    let running = true;
    // BENCH_CHILD_LOGS=DIR: each child's whole stdout and stderr also go to DIR/<name>-<pid>.log.
    const logFile = process.env.BENCH_CHILD_LOGS ? join(process.env.BENCH_CHILD_LOGS, `${name}-${proc.pid}.log`) : null;
    proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (out.length < 1 << 20) out += chunk;
      if (logFile) appendFileSync(logFile, chunk);
    });
    proc.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      if (err.length < 1 << 16) err += chunk;
      if (logFile) appendFileSync(logFile, chunk);
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      proc.once("exit", (code, signal) => {
        running = false;
        resolve({ code, signal });
      });
      proc.once("error", () => {
        running = false;
        resolve({ code: -1, signal: null });
      });
    });
    const handle: ChildHandle = {
      name,
      pid: proc.pid,
      process: proc,
      stdout: () => out,
      stderr: () => err,
      exited,
      isRunning: () => running,
    };
    this.children.add(handle);
    void exited.then(() => this.children.delete(handle));
    return handle;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(child: ChildHandle, graceMs = 10_000): Promise<void> {
    if (!child.isRunning()) return;
    child.process.kill("SIGTERM");
    const timer = sleep(graceMs).then(() => "timeout" as const);
    if ((await Promise.race([child.exited, timer])) === "timeout" && child.isRunning()) {
      child.process.kill("SIGKILL");
      await Promise.race([child.exited, sleep(2_000)]);
    }
  }

  async stopAll(graceMs = 10_000): Promise<void> {
    await Promise.all([...this.children].map((child) => this.stop(child, graceMs)));
  }

  /** Synchronous last resort (process 'exit' handler): SIGKILL whatever is still running. */
  killAllNow(): void {
    for (const child of this.children) {
      if (child.isRunning()) {
        try {
          child.process.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  }
}

/** Waits for a child to exit within `timeoutMs`; a non-zero exit or a timeout throws with its stderr. */
export async function waitForExit(child: ChildHandle, timeoutMs: number): Promise<void> {
  const result = await Promise.race([child.exited, sleep(timeoutMs).then(() => "timeout" as const)]);
  if (result === "timeout") {
    child.process.kill("SIGKILL");
    throw new Error(`${child.name} did not finish within ${Math.round(timeoutMs / 1000)} s`);
  }
  if (result.code !== 0) {
    throw new Error(`${child.name} exited with ${result.code ?? result.signal}:\n${child.stderr().slice(-4000)}`);
  }
}

/** Polls (every 20 ms) until the child has printed `text` on stdout. */
export async function waitForOutput(child: ChildHandle, text: string, timeoutMs: number): Promise<void> {
  for (let polls = 0; polls < Math.ceil(timeoutMs / 20); polls++) {
    if (child.stdout().includes(text)) return;
    if (!child.isRunning())
      throw new Error(`${child.name} exited before printing "${text}":\n${child.stderr().slice(-3000)}`);
    await sleep(20);
  }
  throw new Error(`${child.name} did not print "${text}" within ${Math.round(timeoutMs / 1000)} s`);
}

/** The last stdout line of a finished child that parses as JSON. */
export function lastJsonLine<T>(child: ChildHandle): T {
  const lines = child.stdout().trim().split("\n").reverse();
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    try {
      return JSON.parse(line) as T;
    } catch {
      // keep looking
    }
  }
  throw new Error(
    `${child.name} printed no JSON result:\n${child.stdout().slice(-2000)}\n${child.stderr().slice(-2000)}`,
  );
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 2xx; fails early when the child exits. */
export async function waitForHttp(url: string, child: ChildHandle, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < timeoutMs / 100 + 1; i++) {
    if (!child.isRunning()) throw new Error(`${child.name} exited at start-up:\n${child.stderr().slice(-3000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) break;
    await sleep(100);
  }
  throw new Error(`${child.name} not reachable at ${url} within ${timeoutMs / 1000} s`);
}

// ---------------------------------------------------------------------------------------------------------
// Sampling of RSS and CPU time. Linux /proc when present (exact VmHWM high-water mark, CPU ticks), `ps`
// otherwise (RSS only).

const HAS_PROC = (() => {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
})();

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function readStatus(pid: number): { rssKb: number; hwmKb: number } | undefined {
  if (!HAS_PROC) {
    try {
      const rss = Number(execFileSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8" }).trim());
      return Number.isFinite(rss) && rss > 0 ? { rssKb: rss, hwmKb: rss } : undefined;
    } catch {
      return undefined;
    }
  }
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /VmRSS:\s+(\d+)/.exec(text);
    const hwm = /VmHWM:\s+(\d+)/.exec(text);
    return { rssKb: Number(rss?.[1] ?? 0), hwmKb: Number(hwm?.[1] ?? 0) };
  } catch {
    return undefined;
  }
}

/** A process's resident set size now, in MB (undefined once it has exited). */
export function currentRssMb(pid: number): number | undefined {
  const status = readStatus(pid);
  return status ? status.rssKb / 1024 : undefined;
}

/** utime + stime of a process, in seconds. */
function readCpuSeconds(pid: number): number | undefined {
  if (!HAS_PROC) return undefined;
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

interface MachineCpu {
  busy: number;
  steal: number;
}

/**
 * Busy and stolen CPU seconds of the whole machine (all cores), from /proc/stat. Steal is time the
 * hypervisor gave this VM's cores to someone else: not busy here, but not available either, so a
 * CPU-bound phase runs that much slower (seen here: 5–45 % of each second, varying by the minute).
 */
function readMachineCpu(): MachineCpu | undefined {
  if (!HAS_PROC) return undefined;
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user
    const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = values.reduce((a, b) => a + b, 0);
    const idle = (values[3] ?? 0) + (values[4] ?? 0);
    const steal = values[7] ?? 0;
    return { busy: (total - idle - steal) / CLK_TCK, steal: steal / CLK_TCK };
  } catch {
    return undefined;
  }
}

/**
 * A filter for watchGroup("postgres", …): the server's own processes (checkpointer, WAL writer, …) and the
 * backends connected to `database`; backends of other databases (other programs on the machine) are left
 * out. Reads the process title, e.g. "postgres: 15/main: postgres smsblast_bench 127.0.0.1(51234) idle".
 */
export function postgresOf(database: string): (pid: number) => boolean | undefined {
  return (pid) => {
    let title: string;
    try {
      title = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
    } catch {
      return HAS_PROC ? false : true;
    }
    const isBackend = /\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]|::1?\(\d+\)/.test(title);
    if (title.includes("autovacuum worker")) return title.split(/\s+/).includes(database);
    if (!isBackend) {
      // Postmaster and auxiliary processes serve every database; a backend still starting has no title yet.
      return /^postgres: /.test(title) || title.includes("/postgres ") ? true : undefined;
    }
    return title.split(/\s+/).includes(database);
  };
}

function pidsByComm(pattern: RegExp): number[] {
  if (!HAS_PROC) {
    try {
      const out = execFileSync("ps", ["-eo", "pid=,comm="], { encoding: "utf8" });
      return out
        .split("\n")
        .map((line) => line.trim().split(/\s+/))
        .filter(([, comm]) => comm !== undefined && pattern.test(comm))
        .map(([pid]) => Number(pid));
    } catch {
      return [];
    }
  }
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (pattern.test(readFileSync(`/proc/${entry}/comm`, "utf8").trim())) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

interface Tracked {
  label: string;
  peakRssKb: number;
  /** CPU seconds at the start of the window (0 for a process first seen after it started). */
  cpuBase: number;
  cpuLast: number;
  alive: boolean;
  /** Whether the kernel's VmHWM covers only this window (our child since birth, or reset by clear_refs). */
  useHwm: boolean;
  /** A member of a watchGroup (e.g. one postgres backend among many): no RSS time series. */
  inGroup: boolean;
}

/** RSS over time of one watched process (one pid), while recording: [epoch ms, MB] points. */
export interface RssSeries {
  label: string;
  pid: number;
  points: Array<[number, number]>;
}

export interface WindowReport {
  seconds: number;
  /** CPU used per label over the window, in cores (1.0 = one core fully busy). */
  cores: Record<string, number>;
  /** Peak RSS per label in MB (for groups: the largest single process). */
  peakRssMb: Record<string, number>;
  /** Per label, the busiest single process, in cores (for groups such as postgres backends). */
  busiestProcess: Record<string, number>;
  /** Whole machine: busy cores over the window (steal not included). */
  machineBusyCores: number | undefined;
  /** Whole machine: cores' worth of time the hypervisor took away over the window (see readMachineCpu). */
  machineStealCores: number | undefined;
}

/**
 * Polls watched pids (and process groups found by command name, e.g. every `postgres` backend) every
 * `intervalMs`: max RSS, plus CPU time deltas over a measurement window.
 */
export class ProcessSampler {
  private readonly tracked = new Map<number, Tracked>();
  private readonly groups: Array<{ label: string; pattern: RegExp; accept?: (pid: number) => boolean | undefined }> =
    [];
  /** Group members rejected by their filter (e.g. backends of another database); never re-read. */
  private readonly ignored = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private windowStart = 0;
  private machineStart: MachineCpu | undefined;
  /** Per pid, while recording (startSeries … stopSeries); undefined when not recording. */
  private series: Map<number, RssSeries> | undefined;

  constructor(private readonly intervalMs = 200) {}

  watch(label: string, pid: number): void {
    this.tracked.set(pid, {
      label,
      peakRssKb: 0,
      cpuBase: 0,
      cpuLast: readCpuSeconds(pid) ?? 0,
      alive: true,
      useHwm: true,
      inGroup: false,
    });
    this.sampleOne(pid);
  }

  /** Starts keeping every tick's RSS of each watched process (not groups), for plots. */
  startSeries(): void {
    this.series = new Map();
    this.tick();
  }

  /** Stops recording; the series in order of each process's first sample. */
  stopSeries(): RssSeries[] {
    this.tick();
    const out = [...(this.series?.values() ?? [])].filter((s) => s.points.length > 0);
    this.series = undefined;
    return out;
  }

  /**
   * Every process whose command name matches `pattern`; `accept` may leave one out (false) or decide at
   * a later tick (undefined).
   */
  watchGroup(label: string, pattern: RegExp, accept?: (pid: number) => boolean | undefined): void {
    this.groups.push({ label, pattern, accept });
    this.discover();
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Starts a new window: CPU deltas from now and, unless `resetPeaks` is false, peaks reset (also the
   * kernel's VmHWM, where allowed).
   */
  beginWindow(options: { resetPeaks?: boolean } = {}): void {
    const resetPeaks = options.resetPeaks ?? true;
    this.discover();
    for (const [pid, t] of this.tracked) {
      if (!t.alive) {
        this.tracked.delete(pid);
        continue;
      }
      const cpu = readCpuSeconds(pid);
      t.cpuBase = cpu ?? 0;
      t.cpuLast = cpu ?? 0;
      if (!resetPeaks) continue;
      t.peakRssKb = 0;
      t.useHwm = false;
      if (HAS_PROC) {
        try {
          writeFileSync(`/proc/${pid}/clear_refs`, "5"); // resets VmHWM to the current RSS
          t.useHwm = true;
        } catch {
          // not permitted (e.g. postgres under another user): sampled peaks only
        }
      }
      this.sampleOne(pid);
    }
    this.windowStart = performance.now();
    this.machineStart = readMachineCpu();
  }

  endWindow(): WindowReport {
    this.tick();
    const seconds = (performance.now() - this.windowStart) / 1000;
    const cores: Record<string, number> = {};
    const peakRssMb: Record<string, number> = {};
    const busiestProcess: Record<string, number> = {};
    for (const t of this.tracked.values()) {
      const used = Math.max(0, t.cpuLast - t.cpuBase) / seconds;
      cores[t.label] = (cores[t.label] ?? 0) + used;
      busiestProcess[t.label] = Math.round(Math.max(busiestProcess[t.label] ?? 0, used) * 100) / 100;
      peakRssMb[t.label] = Math.max(peakRssMb[t.label] ?? 0, Math.round(t.peakRssKb / 1024));
    }
    for (const key of Object.keys(cores)) cores[key] = Math.round(cores[key]! * 100) / 100;
    const machineEnd = readMachineCpu();
    const start = this.machineStart;
    const perSecond = (field: "busy" | "steal") =>
      machineEnd && start ? Math.round(((machineEnd[field] - start[field]) / seconds) * 100) / 100 : undefined;
    return {
      seconds,
      cores,
      peakRssMb,
      busiestProcess,
      machineBusyCores: perSecond("busy"),
      machineStealCores: perSecond("steal"),
    };
  }

  /** Peak RSS (MB) of one pid since the window began. */
  peakOf(pid: number): number {
    this.sampleOne(pid);
    return Math.round((this.tracked.get(pid)?.peakRssKb ?? 0) / 1024);
  }

  private tick(): void {
    this.discover();
    for (const pid of this.tracked.keys()) this.sampleOne(pid);
  }

  private discover(): void {
    for (const group of this.groups) {
      for (const pid of pidsByComm(group.pattern)) {
        if (!this.tracked.has(pid) && !this.ignored.has(pid)) {
          const verdict = group.accept?.(pid) ?? (group.accept ? undefined : true);
          if (verdict === false) this.ignored.add(pid);
          if (verdict !== true) continue;
          // First seen after the window started: a new process (a backend for a new connection), base 0.
          this.tracked.set(pid, {
            label: group.label,
            peakRssKb: 0,
            cpuBase: 0,
            cpuLast: 0,
            alive: true,
            useHwm: false,
            inGroup: true,
          });
        }
      }
    }
  }

  private sampleOne(pid: number): void {
    const t = this.tracked.get(pid);
    if (!t || !t.alive) return;
    const status = readStatus(pid);
    const cpu = readCpuSeconds(pid);
    if (!status) {
      t.alive = false; // exited: keep its last CPU reading and its peak
      return;
    }
    t.peakRssKb = Math.max(t.peakRssKb, status.rssKb, t.useHwm ? status.hwmKb : 0);
    if (cpu !== undefined) t.cpuLast = cpu;
    if (this.series && !t.inGroup) {
      let series = this.series.get(pid);
      if (!series) this.series.set(pid, (series = { label: t.label, pid, points: [] }));
      series.points.push([Date.now(), Math.round(status.rssKb / 102.4) / 10]);
    }
  }
}
