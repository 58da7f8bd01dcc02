// The sandbox's own ceiling: a bare undici client keeps `concurrency` POST /v1/messages of `numbers`
// recipients each in flight for `seconds`, against the same sandbox process the workers use.
// usage: sandbox-ceiling-child.ts <url> <concurrency> <seconds> <numbersPerRequest>
// Prints one JSON line: numbers accepted per second, requests per second, p50/p99 request latency.
import { Pool } from "undici";

const [url, concurrencyArg, secondsArg, numbersArg] = process.argv.slice(2);
if (!url) throw new Error("usage: sandbox-ceiling-child.ts <url> <concurrency> <seconds> <numbersPerRequest>");
const concurrency = Number(concurrencyArg ?? 32);
const seconds = Number(secondsArg ?? 5);
const numbersPerRequest = Number(numbersArg ?? 1000);
const WARMUP_MS = 500;
const MAX_REQUESTS = 1_000_000;

// 64 distinct bodies (64k distinct numbers, outside the bench CSV's 81xx–97xx range), built once, so the
// client spends its time on I/O and the sandbox's ledger stays small.
const bodies: string[] = [];
for (let b = 0; b < 64; b++) {
  const to: string[] = [];
  for (let i = 0; i < numbersPerRequest; i++) to.push(`+6560${String(b * numbersPerRequest + i).padStart(6, "0")}`);
  bodies.push(
    JSON.stringify({
      to,
      template: { id: "1", params: { order: "CEILING" } },
      plan_name: `ceiling #${b}`,
      custom_args: { campaign_id: "ceiling", batch_id: String(b) },
    }),
  );
}
const headers = {
  "content-type": "application/json",
  authorization: `Basic ${Buffer.from("sandbox-key:sandbox-secret").toString("base64")}`,
};

const pool = new Pool(url, { connections: concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
const latencies: number[] = [];
let accepted = 0;
let requests = 0;
let errors = 0;
let issued = 0;
const started = performance.now();
const measureFrom = started + WARMUP_MS;
const deadline = measureFrom + seconds * 1000;

async function loop(index: number): Promise<void> {
  let n = index;
  while (performance.now() < deadline && issued < MAX_REQUESTS) {
    issued++;
    const t0 = performance.now();
    const res = await pool.request({
      path: "/v1/messages",
      method: "POST",
      headers,
      body: bodies[n++ % bodies.length],
    });
    const body = (await res.body.json()) as { accepted_count?: number };
    const t1 = performance.now();
    if (t1 < measureFrom || t1 > deadline) continue; // completions inside the measured window count
    if (res.statusCode !== 200) {
      errors++;
      continue;
    }
    requests++;
    accepted += body.accepted_count ?? 0;
    latencies.push(t1 - t0);
  }
}

await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
await pool.close();
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  Math.round((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0) * 10) / 10;
console.log(
  JSON.stringify({
    concurrency,
    seconds,
    numbersPerRequest,
    requests,
    errors,
    numbersPerSecond: Math.round(accepted / seconds),
    requestsPerSecond: Math.round(requests / seconds),
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
  }),
);
