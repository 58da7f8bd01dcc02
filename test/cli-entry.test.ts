import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { chooseEntry } from "../bin/entry.js";

// bin/smsblast.js runs the compiled build only while no source is newer than it: never a stale build.
describe("which CLI build runs", () => {
  let root: string;
  afterEach(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });
  const touch = async (file: string, secondsAgo: number) => {
    const full = path.join(root, file);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, "");
    const at = new Date(Date.now() - secondsAgo * 1000);
    await utimes(full, at, at);
  };

  it("the TypeScript through tsx when there is no build, the build when it is newer than every source", async () => {
    root = await mkdtemp(path.join(tmpdir(), "smsblast-entry-"));
    await touch("src/cli/main.ts", 60);
    await touch("src/store/deep/nested.ts", 50);
    expect(chooseEntry(root)).toBe("tsx");
    await touch("dist/src/cli/main.js", 10);
    expect(chooseEntry(root)).toBe("compiled");
  });

  it("a source edited after the build makes it stale, even deep in src/; other files do not", async () => {
    root = await mkdtemp(path.join(tmpdir(), "smsblast-entry-"));
    await touch("src/cli/main.ts", 60);
    await touch("dist/src/cli/main.js", 30);
    await touch("src/README.md", 0);
    expect(chooseEntry(root)).toBe("compiled");
    await touch("src/store/deep/nested.ts", 0);
    expect(chooseEntry(root)).toBe("tsx");
  });

  it("an image with only dist/ runs it", async () => {
    root = await mkdtemp(path.join(tmpdir(), "smsblast-entry-"));
    await touch("dist/src/cli/main.js", 30);
    expect(chooseEntry(root)).toBe("compiled");
  });
});
