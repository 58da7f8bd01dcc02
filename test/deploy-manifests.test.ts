import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../src/config/config.ts";
import { staleClaimAfterMs } from "../src/model/states.ts";
import { createSchedulerMetrics, startMetricsServer } from "../src/runtime/metrics.ts";
import { startTestApi, type ApiTestServer } from "./helpers/api-client.ts";
import { createTestEnv, type TestEnv } from "./helpers/test-env.ts";

const DIR = fileURLToPath(new URL("../deploy/kubernetes/", import.meta.url));

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
interface Container {
  name: string;
  image: string;
  args: string[];
  envFrom: unknown[];
  ports?: Array<{ name: string; containerPort: number }>;
  readinessProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  resources: { requests: { memory: string }; limits: { memory: string } };
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  containers: Container[];
}

async function loadManifests(): Promise<Manifest[]> {
  const manifests: Manifest[] = [];
  for (const file of (await readdir(DIR)).filter((f) => f.endsWith(".yaml")).sort()) {
    for (const doc of parseAllDocuments(await readFile(`${DIR}${file}`, "utf8"))) {
      expect(doc.errors, file).toEqual([]);
      manifests.push(doc.toJS() as Manifest);
    }
  }
  return manifests;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
};

const podSpecOf = (m: Manifest) => (m.spec as { template: { spec: PodSpec } }).template.spec;
const mebibytes = (q: string) => Number(/^(\d+)Mi$/.exec(q)![1]);

// Issue 17.4: the Kubernetes manifests validate against the Kubernetes (and KEDA) schemas and keep the
// invariants a rolling restart and the probes rely on.
describe("deployment manifests", { timeout: 60_000 }, () => {
  let manifests: Manifest[];
  beforeAll(async () => {
    manifests = await loadManifests();
  });
  const byKind = (kind: string) => manifests.filter((m) => m.kind === kind);
  const workload = (name: string) => manifests.find((m) => m.kind === "Deployment" && m.metadata.name === name)!;

  it("every document validates against its Kubernetes or KEDA schema", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(10);
    for (const m of manifests) {
      const Model = MODELS[`${m.apiVersion}/${m.kind}`];
      expect(Model, `${m.apiVersion} ${m.kind} ${m.metadata.name}`).toBeDefined();
      expect(() => new Model!(m as never).validate(), m.metadata.name).not.toThrow();
    }
  });

  it("one image and one environment for every role; each role runs its own command", () => {
    const workloads = [...byKind("Deployment"), ...byKind("Job")];
    const containers = workloads.map((m) => podSpecOf(m).containers[0]!);
    expect(new Set(containers.map((c) => c.image)).size).toBe(1);
    for (const c of containers) {
      expect(c.envFrom, c.name).toEqual([
        { configMapRef: { name: "smsblast-env" } },
        { secretRef: { name: "smsblast-secrets" } },
      ]);
    }
    expect(Object.fromEntries(workloads.map((m) => [m.metadata.name, podSpecOf(m).containers[0]!.args]))).toEqual({
      "smsblast-api": ["serve"],
      "smsblast-worker": ["worker"],
      "smsblast-delivery-worker": ["delivery-worker"],
      "smsblast-scheduler": ["scheduler"],
      "smsblast-migrate": ["migrate"],
    });
    // The shared settings parse as the application's own configuration would.
    const config = byKind("ConfigMap")[0]!.data!;
    const secret = byKind("Secret")[0]!.stringData!;
    // The Secret's empty values stand for the operator's own: any value will do to check the settings parse.
    const filled = Object.fromEntries(Object.entries(secret).map(([k, v]) => [k, v === "" ? `set-${k}` : v]));
    expect(() => loadConfig({ ...config, ...filled })).not.toThrow();
  });

  it("a worker's grace period outlasts its slowest batch: provider timeout, claim margin and recording", () => {
    const config = byKind("ConfigMap")[0]!.data!;
    const timeoutMs = Number(config.PROVIDER_TIMEOUT_MS);
    const grace = podSpecOf(workload("smsblast-worker")).terminationGracePeriodSeconds!;
    // The worker waits up to staleClaimAfterMs for its in-flight batches; recording them needs a few seconds more.
    expect(grace * 1000).toBeGreaterThanOrEqual(staleClaimAfterMs(timeoutMs) + 10_000);
  });

  it("resource requests cover the measured peak RSS (README: a worker peaks at ~156 MB sending 1M)", () => {
    const worker = podSpecOf(workload("smsblast-worker")).containers[0]!;
    expect(mebibytes(worker.resources.requests.memory)).toBeGreaterThanOrEqual(160);
    for (const m of [...byKind("Deployment"), ...byKind("Job")]) {
      const c = podSpecOf(m).containers[0]!;
      expect(mebibytes(c.resources.limits.memory), m.metadata.name).toBeGreaterThan(
        mebibytes(c.resources.requests.memory),
      );
    }
  });

  it("a PodDisruptionBudget and the autoscaler target the workers; the autoscaler counts waiting and prioritised jobs and is capped", () => {
    const workerLabels = (workload("smsblast-worker").spec as { selector: { matchLabels: object } }).selector
      .matchLabels;
    const pdbs = byKind("PodDisruptionBudget").map(
      (p) => (p.spec as { selector: { matchLabels: object } }).selector.matchLabels,
    );
    expect(pdbs).toContainEqual(workerLabels);
    const scaled = byKind("ScaledObject")[0]!.spec as {
      scaleTargetRef: { name: string };
      maxReplicaCount: number;
      triggers: Array<{ type: string; metadata: { query: string } }>;
    };
    expect(scaled.scaleTargetRef.name).toBe("smsblast-worker");
    expect(scaled.maxReplicaCount).toBeGreaterThan(0);
    expect(scaled.triggers[0]!.type).toBe("prometheus");
    expect(scaled.triggers[0]!.metadata.query).toMatch(
      /smsblast_queue_jobs\{queue="send",state=~"waiting\|prioritized"\}/,
    );
  });

  describe("probe paths exist on the real processes", () => {
    let env: TestEnv;
    let api: ApiTestServer;
    beforeAll(async () => {
      env = await createTestEnv("deploy_manifests");
      api = await startTestApi(env);
    });
    afterAll(async () => {
      await api?.server.stop();
      await env?.cleanup();
    });

    it("every probe's path answers 200 on the port its container declares", async () => {
      const metricsPort = Number(byKind("ConfigMap")[0]!.data!.METRICS_PORT);
      const metrics = await startMetricsServer(createSchedulerMetrics([]), {
        host: "127.0.0.1",
        port: 0,
        log: env.log,
      });
      try {
        const probed: string[] = [];
        for (const m of byKind("Deployment")) {
          const c = podSpecOf(m).containers[0]!;
          for (const probe of [c.readinessProbe, c.livenessProbe]) {
            if (!probe) continue;
            const port = c.ports!.find((p) => p.name === probe.httpGet.port)!;
            expect(port, `${m.metadata.name} names a port it declares`).toBeDefined();
            // The API listens on API_PORT; workers and the scheduler serve their probes on METRICS_PORT.
            const base =
              c.args[0] === "serve"
                ? (expect(port.containerPort).toBe(3000), api.server.url)
                : (expect(port.containerPort).toBe(metricsPort), `http://127.0.0.1:${metrics.port}`);
            const response = await fetch(`${base}${probe.httpGet.path}`);
            expect(response.status, `${m.metadata.name} ${probe.httpGet.path}`).toBe(200);
            probed.push(`${m.metadata.name}${probe.httpGet.path}`);
          }
        }
        expect(probed).toEqual(
          expect.arrayContaining([
            "smsblast-api/readyz",
            "smsblast-api/healthz",
            "smsblast-worker/healthz",
            "smsblast-scheduler/healthz",
          ]),
        );
      } finally {
        await metrics.close();
      }
    });
  });
});
