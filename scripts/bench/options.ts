// Command-line flags (and BENCH_* environment variables) of `npm run bench`.

export interface BenchOptions {
  sizes: number[];
  workers: number;
  latencyMs: number;
  /** SEND_CONCURRENCY of each worker process. */
  concurrency: number;
  /** Requests the bare client keeps in flight against the sandbox (default: workers × concurrency). */
  ceilingConcurrency: number;
  ceilingSeconds: number;
  /** The list size the naive baseline runs on (100k if measured, else the smallest size). */
  naiveSize: number | undefined;
  naiveMaxSeconds: number;
  quick: boolean;
  databaseUrl: string;
  redisUrl: string;
  queuePrefix: string;
  keepCsv: boolean;
  /** The delivery phase: a `delivered` report for every recipient of the end-to-end campaign. */
  delivery: boolean;
  /** The peer design (one BullMQ job per recipient through v1/custom-messages) at this many recipients. */
  peerSize: number | undefined;
  /** Write an SVG of throughput and RSS over time for the 1M run (else the largest). */
  plot: boolean;
}

export const USAGE = `usage: npm run bench -- [options]
  --sizes 100000,1000000   list sizes (k/M suffixes allowed; env BENCH_SIZES)   default 100k,1M
  --quick                  one 10k list: a smoke run
  --workers N              worker processes (env BENCH_WORKERS)                 default 2
  --latency-ms N           sandbox latency per request (env BENCH_LATENCY_MS)   default 50
  --concurrency N          SEND_CONCURRENCY per worker (env BENCH_CONCURRENCY)  default 16
  --ceiling-seconds N      how long the bare client drives the sandbox          default 5
  --no-naive               skip the naive baseline
  --no-delivery            skip the delivery phase (a report per recipient through serve + delivery-worker)
  --naive-max-seconds N    beyond this, the naive run is sampled and extrapolated default 120
  --peer-size N            the peer design at N recipients (env BENCH_PEER_SIZE)  default 20k (--quick: 10k)
                           (a BullMQ job per recipient through v1/custom-messages, same workers ×
                           concurrency and sandbox), beside our send at N
  --no-peer                skip the peer design
  --plot                   also write bench-results/bench-<timestamp>.svg: throughput and RSS over time
                           of the 1M run (else the largest size)
  --keep-csv               keep the generated CSV files (path printed)
Uses the database smsblast_bench (dropped and re-created; env BENCH_DATABASE_URL) and the Redis prefix
{smsblast-bench} (env BENCH_QUEUE_PREFIX; the peer uses {smsblast-bench-peer}) on env BENCH_REDIS_URL.
Send workers run with NODE_OPTIONS=--max-old-space-size=96, as deployed (env BENCH_WORKER_NODE_OPTIONS;
"" for V8's own heap limit).
Results: bench-results/bench-<timestamp>.json`;

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim());
  if (!m) throw new Error(`bad size "${text}" (e.g. 100000, 100k, 1M)`);
  const factor = m[2]?.toLowerCase() === "k" ? 1_000 : m[2]?.toLowerCase() === "m" ? 1_000_000 : 1;
  const n = Math.round(Number(m[1]) * factor);
  if (n < 1 || n > 17_000_000) throw new Error(`size ${text} out of range (1 … 17M distinct numbers)`);
  return n;
}

function positive(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${text}"`);
  return n;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions | "help" {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new Error(`unexpected argument "${arg}"\n${USAGE}`);
    const [key, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    if (["quick", "no-naive", "no-delivery", "no-peer", "plot", "keep-csv", "help"].includes(key)) {
      flags.set(key, true);
    } else if (
      [
        "sizes",
        "workers",
        "latency-ms",
        "latency",
        "concurrency",
        "ceiling-seconds",
        "naive-max-seconds",
        "peer-size",
      ].includes(key)
    ) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`--${key} needs a value`);
      flags.set(key === "latency" ? "latency-ms" : key, value);
    } else {
      throw new Error(`unknown option --${key}\n${USAGE}`);
    }
  }
  if (flags.has("help")) return "help";
  const str = (flag: string, envName: string): string | undefined => {
    const v = flags.get(flag);
    return typeof v === "string" ? v : env[envName] || undefined;
  };
  const quick = flags.has("quick");
  const sizesText = str("sizes", "BENCH_SIZES");
  const sizes = sizesText ? sizesText.split(",").map(parseSize) : quick ? [10_000] : [100_000, 1_000_000];
  const workers = positive("--workers", str("workers", "BENCH_WORKERS") ?? "2");
  const concurrency = positive("--concurrency", str("concurrency", "BENCH_CONCURRENCY") ?? "16");
  const latencyText = str("latency-ms", "BENCH_LATENCY_MS") ?? "50";
  const latencyMs = Number(latencyText);
  if (!Number.isInteger(latencyMs) || latencyMs < 0)
    throw new Error(`--latency-ms must be an integer ≥ 0, got "${latencyText}"`);
  const naive = !flags.has("no-naive");
  const peerText = str("peer-size", "BENCH_PEER_SIZE");
  // A smoke run keeps the peer small: at 50 ms latency it sends ~640 recipients/s.
  const peerSize = flags.has("no-peer") ? undefined : peerText ? parseSize(peerText) : quick ? sizes[0]! : 20_000;
  return {
    sizes,
    workers,
    latencyMs,
    concurrency,
    ceilingConcurrency: workers * concurrency,
    ceilingSeconds: positive("--ceiling-seconds", str("ceiling-seconds", "BENCH_CEILING_SECONDS") ?? "5"),
    naiveSize: naive ? (sizes.includes(100_000) ? 100_000 : Math.min(...sizes)) : undefined,
    naiveMaxSeconds: positive("--naive-max-seconds", str("naive-max-seconds", "BENCH_NAIVE_MAX_SECONDS") ?? "120"),
    quick,
    databaseUrl: env.BENCH_DATABASE_URL || "postgresql://postgres@127.0.0.1:5432/smsblast_bench",
    redisUrl: env.BENCH_REDIS_URL || "redis://127.0.0.1:6379",
    queuePrefix: env.BENCH_QUEUE_PREFIX || "{smsblast-bench}",
    keepCsv: flags.has("keep-csv"),
    delivery: !flags.has("no-delivery"),
    peerSize,
    plot: flags.has("plot"),
  };
}
