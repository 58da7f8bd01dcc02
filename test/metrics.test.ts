import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSendWorker } from "../src/runtime/send-worker-runtime.ts";
import { startTestApi, type ApiTestServer } from "./helpers/api-client.ts";
import { launchCampaign, waitForCampaignEnd } from "./helpers/campaign-runner.ts";
import { createTestEnv, csvOf, singaporeNumbers, type TestEnv } from "./helpers/test-env.ts";

interface Family {
  name: string;
  type: string;
  metrics: Array<{ labels?: Record<string, string>; value?: string; count?: string; buckets?: Record<string, string> }>;
}

/**
 * The metric families of a Prometheus text answer, parsed by a parser library (not by the code under test).
 * It keeps a histogram's buckets but drops its labels, so label checks on histograms read the `_count` line.
 */
function parse(text: string): Map<string, Family> {
  return new Map((parsePrometheusTextFormat(text) as Family[]).map((family) => [family.name, family]));
}

function sample(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  if (!family) return 0;
  return family.metrics
    .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    .reduce((sum, m) => sum + Number(m.value ?? m.buckets?.["+Inf"] ?? 0), 0);
}

function histogramCount(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}_count{${labels}}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

describe("Prometheus metrics: API and worker", () => {
  let env: TestEnv;
  let api: ApiTestServer;

  beforeAll(async () => {
    env = await createTestEnv("metrics");
    api = await startTestApi(env);
  });
  afterAll(async () => {
    await api?.server.stop();
    await env?.cleanup();
  });

  it("serves the API's metrics behind a token: process metrics, request durations by route pattern and status, queue depth", async () => {
    expect((await api.request("GET", "/metrics", { token: null })).status).toBe(401);
    await api.json("GET", "/api/v1/campaigns/00000000-0000-4000-8000-000000000000", { token: api.tokens.viewer }); // a 404
    const response = await api.request("GET", "/metrics", { token: api.tokens.viewer });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const text = await response.text();
    const families = parse(text);
    expect(families.get("smsblast_process_cpu_seconds_total")?.type).toBe("COUNTER");
    expect(families.get("smsblast_http_request_duration_seconds")?.type).toBe("HISTOGRAM");
    expect(families.get("smsblast_http_request_duration_seconds")?.metrics.length).toBeGreaterThan(0);
    expect(
      histogramCount(
        text,
        "smsblast_http_request_duration_seconds",
        'method="GET",route="/api/v1/campaigns/:id",status="404"',
      ),
    ).toBe(1);
    expect(sample(families, "smsblast_queue_jobs", { queue: "send", state: "waiting" })).toBe(0);
  });

  it("has each worker serve its own /metrics on METRICS_PORT, and its counters move when a campaign runs", async () => {
    const worker = await startSendWorker({ ...env.config, metrics: { port: 0, host: "127.0.0.1" } }, env.log);
    const scrape = async () => parse(await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text());
    try {
      const before = await scrape();
      expect(sample(before, "smsblast_batches_sent_total")).toBe(0);
      env.sandbox.failNext(1, "error"); // one HTTP 500: a provider error and a retry
      const file = await env.writeCsv(
        "m.csv",
        csvOf(
          ["phone"],
          singaporeNumbers(1_500).map((n) => [n]),
        ),
      );
      const campaign = await launchCampaign(env, { file });
      expect((await waitForCampaignEnd(env, campaign.campaignId)).status).toBe("completed");
      const after = await scrape();
      expect(sample(after, "smsblast_batches_sent_total", { provider: "messages", outcome: "accepted" })).toBe(2);
      expect(sample(after, "smsblast_batches_sent_total", { provider: "messages", outcome: "error" })).toBe(1);
      expect(sample(after, "smsblast_recipients_total", { provider: "messages", outcome: "accepted" })).toBe(1_500);
      expect(sample(after, "smsblast_provider_errors_total", { provider: "messages" })).toBe(1);
      expect(sample(after, "smsblast_batch_retries_total")).toBe(1);
      expect(sample(after, "smsblast_provider_request_duration_seconds")).toBe(3);
      expect(after.get("smsblast_rate_limit_backoffs_total")?.type).toBe("COUNTER");
      expect(after.has("smsblast_queue_jobs")).toBe(true);
    } finally {
      await worker.stop();
    }
  }, 60_000);
});
