import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";

/**
 * A temp folder for this test file, removed after its tests; `fileOf` writes each content to a new CSV
 * there and returns its path. `dir()` is the folder (for tests that place files beside them).
 */
export function tempCsvFiles(prefix: string): {
  fileOf: (content: string | Uint8Array) => Promise<string>;
  dir: () => string;
} {
  let dir = "";
  let count = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    fileOf: async (content) => {
      const path = join(dir, `${++count}.csv`);
      await writeFile(path, content);
      return path;
    },
    dir: () => dir,
  };
}
