import { InvalidArgumentError } from "commander";
import type { Writable } from "node:stream";
import { isClosedOutput } from "../campaigns/csv-export.ts";
import { toRegion } from "../recipients/phone.ts";

/**
 * Runs an export to stdout; `smsblast report … | head` closing the pipe early ends it quietly (exit 0, no
 * error), as any Unix filter does. Returns the count written, or undefined when the reader went away.
 */
export async function exportToStdout(write: (out: Writable) => Promise<number>): Promise<number | undefined> {
  // Once the pipe is closed every later write fails again: a listener keeps those from crashing the process.
  const ignore = () => {};
  process.stdout.on("error", ignore);
  try {
    return await write(process.stdout);
  } catch (error) {
    if (isClosedOutput(error)) return undefined;
    throw error;
  }
}

/** `--param key=value` (repeatable) into an object. */
export function collectKeyValue(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  const key = value.slice(0, eq).trim();
  // The same key twice (e.g. --param order=A --param order=B) is a mistake, not "the last one wins".
  if (Object.hasOwn(previous, key))
    throw new InvalidArgumentError(`"${key}" is given twice (${key}=${previous[key]} and ${value}); keep one`);
  return { ...previous, [key]: value.slice(eq + 1) };
}

export function collectList(value: string, previous: string[]): string[] {
  return [
    ...previous,
    ...value
      .split(",")
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

export function isoTime(value: string): Date {
  const at = new Date(value);
  if (Number.isNaN(at.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    throw new InvalidArgumentError(`expected an ISO time such as 2026-12-01T09:00:00+08:00, got "${value}"`);
  }
  return at;
}

/** `--region sg` or `SG`: a country the phone metadata knows, upper-cased; anything else is refused up front. */
export function regionCode(name: string) {
  return (value: string) => {
    const region = toRegion(value);
    if (region === undefined)
      throw new InvalidArgumentError(`${name} must be a two-letter ISO country code such as SG, got "${value}"`);
    return region;
  };
}

export function wholeNumber(name: string) {
  return (value: string) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`);
    return Number(value);
  };
}

export function numberBetween(name: string, min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number between ${min} and ${max}, got "${value}"`);
    }
    return n;
  };
}
