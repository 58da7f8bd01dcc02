// The parts of `npm run bench:api` that watch the API server's own memory: the server runs as a child process
// (workers/api.ts, as `smsblast serve` does), so its RSS is its alone, not the benchmark client's.
import { createServer } from "node:net";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { ChildSet, currentRssMb, ProcessSampler, type ChildHandle } from "./processes.ts";

export interface ApiChild {
  url: string;
  pid: number;
  handle: ChildHandle;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts `workers/api.ts` with `env` on a free port and waits until /readyz answers 200. */
export async function startApiChild(children: ChildSet, env: NodeJS.ProcessEnv): Promise<ApiChild> {
  const port = await freePort();
  const handle = children.spawnTs("api", "workers/api.ts", [], {
    ...env,
    API_HOST: "127.0.0.1",
    API_PORT: String(port),
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (!handle.isRunning()) throw new Error(`the API server exited:\n${handle.stderr().slice(-3000)}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { url, pid: handle.pid, handle };
    await sleep(100);
  }
  throw new Error(`the API server was not ready within 60 s:\n${handle.stderr().slice(-3000)}`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}
const ms = (value: number) => Number(value.toFixed(1));

export interface SseFigures {
  clients: number;
  seconds: number;
  /** Streams whose first event arrived within the window, per second of the time it took all of them. */
  streamsOpenedPerSecond: number;
  timeToFirstEventMs: { p50: number; p99: number; max: number };
  events: { total: number; perSecond: number; perClientMin: number; perClientMedian: number };
  /** Clients whose stream failed or never produced an event. */
  failedClients: number;
  /** GET /api/v1/campaigns/:id from `probeClients` clients while the streams are open. */
  getWhileStreaming: { clients: number; requestsPerSecond: number; p50Ms: number; p99Ms: number };
  serverRssMb: { before: number; peak: number; growth: number };
}

/**
 * `clients` event streams of one running campaign opened at once and read for `seconds`, with a few clients
 * polling GET /campaigns/:id meanwhile; the server child's RSS sampled throughout (peak from the kernel's
 * high-water mark, reset at the start).
 */
export async function measureSse(
  api: ApiChild,
  token: string,
  campaignId: string,
  options: { clients: number; seconds: number; probeClients?: number },
): Promise<SseFigures> {
  const sampler = new ProcessSampler(50);
  sampler.watch("api", api.pid);
  sampler.start();
  sampler.beginWindow();
  const before = currentRssMb(api.pid) ?? 0;
  const stop = new AbortController();
  const headers = { authorization: `Bearer ${token}` };
  const started = performance.now();
  const deadline = started + options.seconds * 1000;

  const watchOne = async () => {
    const result = { firstEventMs: undefined as number | undefined, events: 0, failed: false };
    try {
      const response = await fetch(`${api.url}/api/v1/campaigns/${campaignId}/events`, {
        headers,
        signal: stop.signal,
      });
      if (response.status !== 200 || !response.body) throw new Error(`status ${response.status}`);
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (!block.startsWith("event:")) continue; // keep-alive comments
          result.events++;
          result.firstEventMs ??= performance.now() - started;
        }
      }
    } catch (error) {
      if (!stop.signal.aborted) result.failed = true;
      else if (!(error instanceof Error && error.name === "AbortError")) result.failed = true;
    }
    return result;
  };

  const probeLatencies: number[] = [];
  const probe = async () => {
    while (performance.now() < deadline) {
      const t = performance.now();
      const r = await fetch(`${api.url}/api/v1/campaigns/${campaignId}`, { headers });
      await r.arrayBuffer();
      probeLatencies.push(performance.now() - t);
    }
  };
  const probeClients = options.probeClients ?? 5;
  const watching = Array.from({ length: options.clients }, watchOne);
  const probing = Promise.all(Array.from({ length: probeClients }, probe));
  await sleep(Math.max(0, deadline - performance.now()));
  stop.abort();
  const results = await Promise.all(watching);
  await probing;
  sampler.stop();
  const peak = sampler.peakOf(api.pid);

  const firsts = results
    .map((r) => r.firstEventMs)
    .filter((v): v is number => v !== undefined)
    .sort((a, b) => a - b);
  const counts = results.map((r) => r.events).sort((a, b) => a - b);
  const total = counts.reduce((a, b) => a + b, 0);
  probeLatencies.sort((a, b) => a - b);
  const lastFirst = firsts.at(-1) ?? NaN;
  return {
    clients: options.clients,
    seconds: options.seconds,
    streamsOpenedPerSecond: Math.round(firsts.length / (lastFirst / 1000)),
    timeToFirstEventMs: { p50: ms(percentile(firsts, 0.5)), p99: ms(percentile(firsts, 0.99)), max: ms(lastFirst) },
    events: {
      total,
      perSecond: Math.round(total / options.seconds),
      perClientMin: counts[0] ?? 0,
      perClientMedian: percentile(counts, 0.5),
    },
    failedClients: results.filter((r) => r.failed || r.firstEventMs === undefined).length,
    getWhileStreaming: {
      clients: probeClients,
      requestsPerSecond: Math.round(probeLatencies.length / options.seconds),
      p50Ms: ms(percentile(probeLatencies, 0.5)),
      p99Ms: ms(percentile(probeLatencies, 0.99)),
    },
    serverRssMb: { before: Math.round(before), peak, growth: Math.round(peak - before) },
  };
}

/**
 * A CSV of `bytes` bytes (the last row may overshoot by one row) made as it is read, 64 KB at a time, so the
 * benchmark never holds it: a phone, a name and a ~200-character message column, ~250 bytes a row.
 */
export function generatedCsv(bytes: number): { stream: Readable; rows: () => number } {
  const note = "Thanks for shopping with us; your order is on its way and will arrive within two working days. ".repeat(
    2,
  );
  let rows = 0;
  let produced = 0;
  function* chunks(): Generator<Buffer> {
    const header = "phone,name,note\n";
    produced += header.length;
    yield Buffer.from(header);
    while (produced < bytes) {
      let chunk = "";
      while (chunk.length < 64 * 1024 && produced + chunk.length < bytes) {
        chunk += `+65${81_000_000 + (rows % 17_000_000)},user${rows % 50},"${note}${rows}"\n`;
        rows++;
      }
      produced += chunk.length;
      yield Buffer.from(chunk);
    }
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), rows: () => rows };
}

export interface UploadRssFigures {
  megabytes: number;
  rows: number;
  seconds: number;
  megabytesPerSecond: number;
  rowsPerSecond: number;
  serverRssMb: { before: number; peak: number; growth: number };
}

/** POSTs a generated CSV of `bytes` as a raw text/csv stream to the server child, sampling the child's RSS. */
export async function uploadGenerated(
  api: ApiChild,
  token: string,
  bytes: number,
): Promise<UploadRssFigures & { uploadId: string }> {
  const sampler = new ProcessSampler(50);
  sampler.watch("api", api.pid);
  sampler.start();
  sampler.beginWindow();
  const before = currentRssMb(api.pid) ?? 0;
  const csv = generatedCsv(bytes);
  const started = performance.now();
  const response = await fetch(`${api.url}/api/v1/uploads?filename=generated.csv`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "text/csv" },
    body: Readable.toWeb(csv.stream) as ReadableStream,
    duplex: "half",
  } as RequestInit);
  const answer = (await response.json()) as { uploadId: string; rows: number };
  const seconds = (performance.now() - started) / 1000;
  sampler.stop();
  const peak = sampler.peakOf(api.pid);
  if (response.status !== 201 || answer.rows !== csv.rows())
    throw new Error(`upload failed: ${response.status} ${JSON.stringify(answer)} (sent ${csv.rows()} rows)`);
  const mb = bytes / 1e6;
  return {
    uploadId: answer.uploadId,
    megabytes: Math.round(mb),
    rows: answer.rows,
    seconds: Number(seconds.toFixed(1)),
    megabytesPerSecond: Number((mb / seconds).toFixed(1)),
    rowsPerSecond: Math.round(answer.rows / seconds),
    serverRssMb: { before: Math.round(before), peak, growth: Math.round(peak - before) },
  };
}
