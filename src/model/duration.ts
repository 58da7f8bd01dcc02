/** Units of a retention duration: `90d`, `12h`, `2w`, `1d12h`. Months and years are not fixed lengths. */
const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Milliseconds of a duration such as `90d`, `12h`, `30m`, `2w` or `1d12h`; null when the text is not one (the
 * caller names its flag or setting in the error). Zero is not a duration here: "older than nothing" would
 * purge a campaign the moment it finished.
 */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim().toLowerCase();
  if (!/^(\d+[smhdw])+$/.test(trimmed)) return null;
  let ms = 0;
  for (const [, n, unit] of trimmed.matchAll(/(\d+)([smhdw])/g)) ms += Number(n) * UNIT_MS[unit!]!;
  return ms > 0 && Number.isSafeInteger(ms) ? ms : null;
}

export const DURATION_EXAMPLES = "90d, 12h, 2w or 1d12h (units s, m, h, d, w)";

/** `90d` back from milliseconds, in the largest whole units (for messages and logs). */
export function formatDuration(ms: number): string {
  let rest = ms;
  let text = "";
  for (const unit of ["d", "h", "m", "s"]) {
    const size = UNIT_MS[unit]!;
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text || "0s";
}
