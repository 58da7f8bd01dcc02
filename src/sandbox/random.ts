/** Tiny seedable PRNG, good enough for reproducible fault injection. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBase36(random: () => number, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += Math.floor(random() * 36).toString(36);
  return text;
}

// EngageLab ids look like snowflakes on the Twitter epoch: (ms since epoch) << 22.
const SNOWFLAKE_EPOCH_MS = 1288834974657n;
const FLOOR_ID = 1972488990548348928n;

/**
 * Monotonic 19-digit ids. Starting from the clock keeps ids unique across sandbox
 * restarts, so a client storing them under a unique constraint does not collide.
 */
export class IdSequence {
  private last: bigint;

  constructor(nowMs: number = Date.now()) {
    const fromClock = (BigInt(Math.floor(nowMs)) - SNOWFLAKE_EPOCH_MS) << 22n;
    this.last = fromClock > FLOOR_ID ? fromClock : FLOOR_ID;
  }

  next(): bigint {
    this.last += 1n;
    return this.last;
  }

  nextString(): string {
    return this.next().toString();
  }
}
