/**
 * A Bloom filter over strings (E.164 numbers, e-mail addresses): "maybe seen" or "certainly not seen", in
 * a fixed number of bytes whatever the list's size. The launch's de-dup uses it to write a number straight
 * into `recipients` the first time it is seen and to hold back, for an exact check in SQL, only the rows
 * it may have seen before (every real repeat, plus a few false positives). Memory stays flat where a Set of
 * ten million strings would take ~1 GB, and exactness never depends on it: it has no false negatives.
 */
export class SeenFilter {
  readonly #bits: Uint32Array;
  readonly #mask: number;
  readonly #hashes: number;

  /** `log2Bits`: 2^log2Bits bits (27 = 16 MB: ~0.2 % false positives at 10M numbers, ~0 at 1M). */
  constructor(log2Bits = 27, hashes = 7) {
    if (!Number.isInteger(log2Bits) || log2Bits < 5 || log2Bits > 31) throw new RangeError("log2Bits: 5 … 31");
    this.#bits = new Uint32Array(2 ** (log2Bits - 5));
    this.#mask = 2 ** log2Bits - 1;
    this.#hashes = hashes;
  }

  /** Adds `value`; true when it may have been added before (all its bits were already set). */
  addIfAbsent(value: string): boolean {
    // Two independent 32-bit hashes (FNV-1a and a multiplicative one), combined as h1 + i·h2
    // (Kirsch–Mitzenmacher): as good as k independent hashes for a Bloom filter.
    let h1 = 0x811c9dc5;
    let h2 = 0x9747b28c;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 + c, 0x5bd1e995) ^ (h2 >>> 15);
    }
    h1 ^= h1 >>> 16;
    h2 = Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35) | 1; // odd, so the probes never repeat
    let present = true;
    for (let i = 0; i < this.#hashes; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.#mask;
      const word = bit >>> 5;
      const flag = 1 << (bit & 31);
      if ((this.#bits[word]! & flag) === 0) {
        present = false;
        this.#bits[word] = this.#bits[word]! | flag;
      }
    }
    return present;
  }
}
