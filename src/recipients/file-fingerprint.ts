import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";

/** What, besides the file's bytes, decides who gets which message. */
export interface FileLaunchSettings {
  provider: string;
  templateId: string;
  params: Record<string, string>;
  phoneColumn: string;
  countryColumn?: string;
  defaultRegion?: string;
}

/**
 * SHA-256 of a CSV file's bytes and the launch settings, for the repeat guard of a launch that has to be
 * guarded before it has read its list (`send --stream`). 1M rows (20 MB) hash in ~15 ms. Null when the file is
 * over `maxBytes` or unreadable: the reading refuses it with its own error, and hashing gigabytes first would only delay that.
 */
export async function fileFingerprint(
  file: string,
  settings: FileLaunchSettings,
  maxBytes?: number,
): Promise<string | null> {
  // A file that cannot be read is refused by the reading, in its words.
  const size = await stat(file).then(
    (s) => s.size,
    () => null,
  );
  if (size === null || (maxBytes !== undefined && size > maxBytes)) return null;
  const hash = createHash("sha256");
  const sorted = Object.fromEntries(Object.entries(settings.params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  hash.update(
    JSON.stringify([
      settings.provider,
      settings.templateId,
      sorted,
      settings.phoneColumn,
      settings.countryColumn ?? null,
      settings.defaultRegion ?? null,
    ]) + "\n",
  );
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
