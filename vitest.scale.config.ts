import { defineConfig } from "vitest/config";

// The scale suite (`npm run test:scale`): worker processes in their own network namespaces, reaching
// PostgreSQL, Redis and the sandbox through a TCP relay that adds latency and cuts hosts off. Root only
// (ip netns); its files run one after another in a single fork, since they share the `sbscale-` prefix.
export default defineConfig({
  test: {
    include: ["test/scale/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    sequence: { concurrent: false },
    globalSetup: ["test/scale/global-setup.ts"],
    // One run = fresh database + 4 hosts, 8 worker processes + two 30,000-recipient campaigns through a fault.
    testTimeout: 300_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
