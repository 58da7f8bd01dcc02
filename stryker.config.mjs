// StrykerJS mutation testing of the pure decision modules (`npm run test:mutation`; README "Mutation testing").
// Not part of `npm test`: a run takes minutes. The tests it runs are vitest.mutation.config.ts's unit tests.
import { readFileSync } from "node:fs";

const CSV_SOURCE = "src/recipients/csv-source.ts";
// The CSV reader's error paths: the functions that refuse a file or a setting and word the refusal. The happy
// path (parsing, judging rows) is left out: it is normalisePhone's decisions plus csv-parse's.
const CSV_ERROR_PATHS = [
  "openCsv",
  "spreadsheetRows",
  "CsvTooLargeError",
  "checkOptions",
  "planRows",
  "assertUniqueNames",
  "sourceError",
  "parseError",
  "fileSize",
  "fileError",
  "emptyFile",
  "formatBytes",
];

/** `file:start-end` for each named top-level function or class, found by name so an edit above it cannot shift the range. */
function functionRanges(file, names) {
  const lines = readFileSync(new URL(file, import.meta.url), "utf8").split("\n");
  return names.map((name) => {
    const declaration = new RegExp(`^(export )?(async )?(function\\*? ?${name}\\(|class ${name} )`);
    const start = lines.findIndex((line) => declaration.test(line));
    if (start === -1) throw new Error(`stryker.config.mjs: no function or class ${name} in ${file}`);
    const end = lines.findIndex((line, i) => i > start && line === "}");
    return `${file}:${start + 1}-${end + 1}`;
  });
}

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts" },
  plugins: ["@stryker-mutator/vitest-runner"],
  mutate: [
    "src/engagelab/error-policy.ts",
    "src/campaigns/batch-decision.ts",
    "src/model/campaign-state.ts",
    "src/recipients/phone.ts",
    "src/recipients/phone-fast-path.ts",
    "src/recipients/errors.ts",
    ...functionRanges(CSV_SOURCE, CSV_ERROR_PATHS),
  ],
  coverageAnalysis: "perTest",
  // Two cores, shared with other work.
  concurrency: 2,
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  // The target is 80 % on each module (README "Mutation testing"); below 80 % overall the run fails.
  thresholds: { high: 90, low: 80, break: 80 },
  tempDirName: ".stryker-tmp",
  cleanTempDir: true,
};
