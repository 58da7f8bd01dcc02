import { defineConfig } from "vitest/config";

// The tests StrykerJS runs against each mutant (`npm run test:mutation`, stryker.config.mjs): the pure unit
// tests of the decision modules. None opens PostgreSQL, Redis or the sandbox, so thousands of runs stay cheap
// and never touch shared services; the integration suites prove the wiring (vitest.config.ts).
export default defineConfig({
  test: {
    include: [
      "test/error-policy.test.ts",
      "test/batch-decision.test.ts",
      "test/model.test.ts",
      "test/phone.test.ts",
      "test/phone-fast-path.test.ts",
      "test/csv-source.test.ts",
      "test/csv-errors.test.ts",
    ],
    testTimeout: 60_000,
  },
});
