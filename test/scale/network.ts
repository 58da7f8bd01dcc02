/**
 * Worker hosts as Linux network namespaces (iproute2's `ip netns`, a veth pair each), joined to this
 * machine's services only through a TcpRelay (relay.ts) on the root end of the host's veth.
 *
 * Host N is the namespace `sbscale-hN` with 10.200.N.2 inside and 10.200.N.1 on the root side, where its
 * relay listens. A process started in it (`ip netns exec`, which execs, so the pid is the process's own)
 * cannot reach 127.0.0.1 of the root namespace: PostgreSQL, Redis and the sandbox only through its relay.
 *
 * Everything created here carries the `sbscale-` prefix; a lock file makes one scale run own the prefix,
 * so leftovers of a crashed run (namespaces, veths) can be removed at start, and everything is removed on
 * exit, on a signal, and in the suite's global teardown. The machine's own services are never touched.
 */
import { execFile, execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { TcpRelay, type RelayOptions } from "./relay.ts";

const execFileP = promisify(execFile);

export const NAME_PREFIX = "sbscale-";
/** veth names are at most 15 characters: `sbscale-h12` and its peer `sbscale-h12n`. */
const LOCK_FILE = "/run/sbscale.lock";
const SUBNET = "10.200";

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await execFileP("ip", args, { timeout: 15_000 });
  return stdout;
}

function ipSync(...args: string[]): string {
  try {
    return execFileSync("ip", args, { timeout: 15_000, stdio: ["ignore", "pipe", "ignore"] }).toString();
  } catch {
    return "";
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Takes the prefix for this process: fails, naming the owner, if another live scale run holds it. A lock
 * left by a dead process is taken over.
 */
export function acquireNetworkLock(): void {
  let owner: number | undefined;
  try {
    owner = Number(readFileSync(LOCK_FILE, "utf8").trim());
  } catch {
    owner = undefined;
  }
  // The suite's global setup takes it in Vitest's main process; its test forks are that process's children.
  if (owner === process.ppid) return;
  if (owner && owner !== process.pid && pidAlive(owner))
    throw new Error(
      `another scale run (pid ${owner}) owns the ${NAME_PREFIX}* namespaces (${LOCK_FILE}); wait for it to finish`,
    );
  writeFileSync(LOCK_FILE, `${process.pid}\n`);
}

export function releaseNetworkLock(): void {
  try {
    if (Number(readFileSync(LOCK_FILE, "utf8").trim()) === process.pid) rmSync(LOCK_FILE);
  } catch {
    // no lock
  }
}

/** Pids of every process running in namespace `ns`. */
export function pidsIn(ns: string): number[] {
  return ipSync("netns", "pids", ns)
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

/**
 * Removes every `sbscale-` namespace (killing what still runs in it: only this suite starts processes
 * there) and every `sbscale-` link. Synchronous, so it also runs from an exit hook.
 */
export function removeAllScaleNetworks(): string[] {
  const removed: string[] = [];
  for (const line of ipSync("netns", "list").split("\n")) {
    const ns = line.split(/\s+/)[0];
    if (!ns?.startsWith(NAME_PREFIX)) continue;
    for (const pid of pidsIn(ns)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    ipSync("netns", "del", ns);
    removed.push(ns);
  }
  for (const line of ipSync("-o", "link", "show").split("\n")) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (name?.startsWith(NAME_PREFIX)) {
      ipSync("link", "del", name);
      removed.push(name);
    }
  }
  return removed;
}

/** Fails, naming the interface, when 10.200.0.0/16 is already in use outside this suite. */
export function assertSubnetFree(): void {
  for (const line of ipSync("-o", "-4", "addr", "show").split("\n")) {
    const [, dev, , , cidr] = line.split(/\s+/);
    if (cidr?.startsWith(`${SUBNET}.`) && !dev?.startsWith(NAME_PREFIX))
      throw new Error(`${cidr} on ${dev} overlaps the scale suite's ${SUBNET}.0.0/16; cannot place worker hosts`);
  }
}

/** Checks that this machine can run the suite: root, iproute2 with netns and veth. */
export async function checkNetnsSupport(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the scale suite needs root (ip netns, veth pairs); CI runs as root");
  await ip("netns", "list").catch((error: unknown) => {
    throw new Error(`\`ip netns\` (iproute2) does not work here: ${String(error)}`);
  });
}

export interface HostOptions {
  relay: Omit<RelayOptions, "listenHost">;
}

/** One worker host: its namespace, its veth pair, its relay. */
export class WorkerHost {
  readonly ns: string;
  /** The root end of the veth, where the relay listens. */
  readonly gateway: string;
  /** The host's own address inside its namespace. */
  readonly address: string;
  readonly relay: TcpRelay;
  private removed = false;

  private constructor(
    readonly index: number,
    options: HostOptions,
  ) {
    this.ns = `${NAME_PREFIX}h${index}`;
    this.gateway = `${SUBNET}.${index}.1`;
    this.address = `${SUBNET}.${index}.2`;
    this.relay = new TcpRelay({ ...options.relay, listenHost: this.gateway });
  }

  get name(): string {
    return `h${this.index}`;
  }

  static async create(index: number, options: HostOptions): Promise<WorkerHost> {
    if (!Number.isInteger(index) || index < 1 || index > 250) throw new RangeError(`host index ${index} out of 1..250`);
    const host = new WorkerHost(index, options);
    const root = host.ns;
    const peer = `${host.ns}n`;
    try {
      await ip("netns", "add", host.ns);
      await ip("link", "add", root, "type", "veth", "peer", "name", peer);
      await ip("link", "set", peer, "netns", host.ns);
      await ip("addr", "add", `${host.gateway}/24`, "dev", root);
      await ip("link", "set", root, "up");
      await ip("netns", "exec", host.ns, "ip", "addr", "add", `${host.address}/24`, "dev", peer);
      await ip("netns", "exec", host.ns, "ip", "link", "set", peer, "up");
      await ip("netns", "exec", host.ns, "ip", "link", "set", "lo", "up");
    } catch (error) {
      await host.remove();
      throw new Error(`could not create worker host ${host.ns}: ${String(error)}`, { cause: error });
    }
    return host;
  }

  /** The command prefix that runs a program inside this host. */
  get launcher(): string[] {
    return ["ip", "netns", "exec", this.ns];
  }

  /** A URL's host and port replaced by a relay port on this host's gateway forwarding to the original. */
  async relayUrl(url: string, defaultPort: number): Promise<string> {
    const parsed = new URL(url);
    const port = await this.relay.forward({
      host: parsed.hostname.replace(/^\[|\]$/g, ""),
      port: Number(parsed.port || defaultPort),
    });
    parsed.hostname = this.gateway;
    parsed.port = String(port);
    return parsed.toString();
  }

  /** Every process running in this host's namespace. */
  pids(): number[] {
    return pidsIn(this.ns);
  }

  /** Kills what runs in it, closes its relay, deletes the namespace (and so its veth pair). */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    for (const pid of this.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await this.relay.close().catch(() => {});
    await ip("netns", "del", this.ns).catch(() => "");
    await ip("link", "del", this.ns).catch(() => "");
  }
}

let exitHookInstalled = false;

/** Removes this suite's namespaces and veths when the process exits or is told to stop. */
export function installCleanupHooks(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    removeAllScaleNetworks();
    releaseNetworkLock();
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      removeAllScaleNetworks();
      releaseNetworkLock();
      process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
    });
  }
}
