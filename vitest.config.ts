import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/faults/**", "test/scale/**", "node_modules/**"],
    // Each file gets its own database and Redis prefix (test/helpers/test-env.ts), so files may run in parallel.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
