/**
 * A TCP relay standing in for the network between one worker host (a network namespace) and the services
 * of this machine, which listen on 127.0.0.1 only. The kernel here has no `netem` qdisc and no iptables, so
 * latency and partitions are made in user space: the relay listens on the host's veth address in the root
 * namespace, one port per service, and forwards each connection to 127.0.0.1.
 *
 * - Latency: every chunk, in both directions, is held 10–30 ms (seeded) before it is written on; a chunk
 *   never overtakes the one before it, as on one TCP stream.
 * - `stall()`: a partition that drops packets. Nothing is forwarded any more and nothing is read (both
 *   ends' kernel buffers fill and their writes block); new connections are accepted by the kernel but get
 *   no upstream until the link is restored. Connections hang, none is closed. Held bytes are delivered on
 *   `restore()`, as TCP retransmission delivers them once a partition heals: a relay that threw bytes away
 *   mid-stream would corrupt the protocol stream, which no packet loss does.
 * - `reset()`: every open connection is closed with an RST on both sides, and the listeners are closed, so
 *   a new connection is refused (ECONNREFUSED) until `restore()` listens again on the same ports.
 */
import net from "node:net";

export interface RelayOptions {
  /** Address to listen on: the host's veth address in the root namespace. */
  listenHost: string;
  /** One-way delay added to each chunk, drawn uniformly from [min, max] ms. */
  delayMs: { min: number; max: number };
  /** Uniform [0, 1) numbers (the harness's seeded PRNG, so a run can be replayed). */
  random: () => number;
}

export type LinkState = "up" | "stalled" | "reset";

export interface RelayStats {
  connections: number;
  open: number;
  /** Connections closed with an RST by `reset()`. */
  resets: number;
  /** Connections that arrived while stalled (held until restore). */
  heldConnections: number;
  bytes: number;
}

/** Above this many bytes queued in one direction, the source is no longer read until the queue drains. */
const HIGH_WATER_BYTES = 1 << 20;

/** One direction of one connection: delayed, order-preserving, pausable. */
class DelayedPipe {
  private readonly queue: Array<{ at: number; data: Buffer | null }> = [];
  private queuedBytes = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;

  constructor(
    private readonly source: net.Socket,
    private readonly target: net.Socket,
    private readonly relay: TcpRelay,
  ) {
    source.on("data", (chunk: Buffer) => this.push(chunk));
    source.on("end", () => this.push(null));
    target.on("drain", () => {
      this.waitingForDrain = false;
      this.flush();
    });
  }

  private push(data: Buffer | null): void {
    // Never before the chunk ahead of it: jitter must not reorder one stream.
    const at = Math.max(Date.now() + this.relay.drawDelay(), this.lastAt);
    this.lastAt = at;
    this.queue.push({ at, data });
    this.relay.countBytes(data?.length ?? 0);
    this.queuedBytes += data?.length ?? 0;
    if (this.queuedBytes > HIGH_WATER_BYTES) this.source.pause();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.waitingForDrain || this.relay.state !== "up" || this.queue.length === 0) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.flush();
      },
      Math.max(0, this.queue[0]!.at - Date.now()),
    );
  }

  private flush(): void {
    if (this.relay.state !== "up" || this.target.destroyed) return;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now && !this.waitingForDrain) {
      const { data } = this.queue.shift()!;
      if (data === null) {
        this.target.end();
        continue;
      }
      this.queuedBytes -= data.length;
      if (!this.target.write(data)) this.waitingForDrain = true;
    }
    if (this.queuedBytes <= HIGH_WATER_BYTES / 2 && !this.source.destroyed) this.source.resume();
    this.schedule();
  }

  stall(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.source.pause();
  }

  restore(): void {
    if (!this.source.destroyed) this.source.resume();
    this.flush();
  }

  discard(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

/** One accepted connection and its upstream, created at once (or at restore, if it came in stalled). */
class RelayedConnection {
  upstream: net.Socket | undefined;
  private pipes: DelayedPipe[] = [];
  private closed = false;

  constructor(
    readonly client: net.Socket,
    private readonly target: { host: string; port: number },
    private readonly relay: TcpRelay,
  ) {
    client.on("error", () => this.close());
    client.on("close", () => this.close());
    if (relay.state === "up") this.connect();
    else client.pause();
  }

  connect(): void {
    if (this.closed || this.upstream) return;
    const upstream = net.connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on("error", () => this.close());
    upstream.on("close", () => this.close());
    this.pipes = [
      new DelayedPipe(this.client, upstream, this.relay),
      new DelayedPipe(upstream, this.client, this.relay),
    ];
    this.client.resume();
  }

  stall(): void {
    for (const pipe of this.pipes) pipe.stall();
    this.client.pause();
  }

  restore(): void {
    if (!this.upstream) this.connect();
    else for (const pipe of this.pipes) pipe.restore();
  }

  /** An RST to both ends: the peers see ECONNRESET, not an orderly close. */
  reset(): void {
    for (const pipe of this.pipes) pipe.discard();
    this.client.resetAndDestroy();
    this.upstream?.resetAndDestroy();
    this.close();
  }

  /** When one side goes away, so does the other (after what was already queued for it, if still up). */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const pipe of this.pipes) pipe.discard();
    this.client.destroy();
    this.upstream?.destroy();
    this.relay.forget(this);
  }
}

/** The relay of one worker host: several forwarded ports, one link state for all of them. */
export class TcpRelay {
  state: LinkState = "up";
  private readonly forwards: Array<{ server: net.Server; port: number; target: { host: string; port: number } }> = [];
  private readonly connections = new Set<RelayedConnection>();
  private readonly stats: RelayStats = { connections: 0, open: 0, resets: 0, heldConnections: 0, bytes: 0 };

  constructor(private readonly options: RelayOptions) {}

  /** Listens on `listenHost:port` (0: any free port) and forwards every connection to `target`; returns the port. */
  async forward(target: { host: string; port: number }, port = 0): Promise<number> {
    const server = this.makeServer(target);
    const bound = await listen(server, this.options.listenHost, port);
    this.forwards.push({ server, port: bound, target });
    if (this.state === "reset") await closeServer(server);
    return bound;
  }

  drawDelay(): number {
    const { min, max } = this.options.delayMs;
    return min + this.options.random() * (max - min);
  }

  countBytes(n: number): void {
    this.stats.bytes += n;
  }

  forget(connection: RelayedConnection): void {
    this.connections.delete(connection);
  }

  snapshot(): RelayStats {
    return { ...this.stats, open: this.connections.size };
  }

  /** Packets dropped: every connection hangs, new ones too, until `restore()`. */
  stall(): void {
    if (this.state !== "up") throw new Error(`relay on ${this.options.listenHost} is ${this.state}, not up`);
    this.state = "stalled";
    for (const connection of this.connections) connection.stall();
  }

  /** Connections closed with an RST and new ones refused, until `restore()`. */
  async reset(): Promise<void> {
    if (this.state !== "up") throw new Error(`relay on ${this.options.listenHost} is ${this.state}, not up`);
    this.state = "reset";
    // Listeners first, so nothing new gets in between the resets and the refusal; a server's close
    // completes only once its connections are gone, so it is awaited after the resets.
    const closed = Promise.all(this.forwards.map((f) => closeServer(f.server)));
    for (const connection of [...this.connections]) {
      this.stats.resets += 1;
      connection.reset();
    }
    await closed;
  }

  async restore(): Promise<void> {
    const was = this.state;
    this.state = "up";
    if (was === "reset") {
      for (const f of this.forwards) {
        f.server = this.makeServer(f.target);
        await listen(f.server, this.options.listenHost, f.port);
      }
    } else for (const connection of this.connections) connection.restore();
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    const closed = Promise.all(this.forwards.map((f) => closeServer(f.server)));
    for (const connection of [...this.connections]) connection.reset();
    await closed;
  }

  private makeServer(target: { host: string; port: number }): net.Server {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
      client.setNoDelay(true);
      this.stats.connections += 1;
      if (this.state === "stalled") this.stats.heldConnections += 1;
      this.connections.add(new RelayedConnection(client, target, this));
    });
    server.on("error", () => {});
    return server;
  }
}

function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}
