import { defineConfig } from "vitest/config";

// The fault suite (`npm run test:faults`): real worker processes, kill -9, FLUSHALL, a PostgreSQL restart.
// It breaks shared services on purpose, so its files run one after another in a single fork.
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    sequence: { concurrent: false },
    globalSetup: ["test/faults/global-setup.ts"],
    // One run = fresh database + 2 worker processes + a 24,000-recipient campaign through a fault.
    testTimeout: 180_000,
    hookTimeout: 90_000,
    teardownTimeout: 60_000,
  },
});
