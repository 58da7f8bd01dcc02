// The ledger's count per target (a number, packed; see ledger.ts), in insertion order. A phone number (an
// optional "+" and up to 14 digits) is keyed by its value in typed arrays: no string kept and nothing for the
// GC to trace, one probe per lookup. A Map of ten million strings was the sandbox's largest cost in a
// benchmark (recordAccepted: 4.2 s of its CPU at 1M, --cpu-prof), on the cores the workers need. Any other
// target (an e-mail address, a longer number) is kept in a Map.

const MAX_DIGITS = 14; // 10^14 × 32 < 2^53: value, length and "+" fit one float exactly

/** The target as a positive integer (value, digit count, "+"), or -1 when it is not a short number. */
function encode(target: string): number {
  const n = target.length;
  let i = 0;
  let plus = 0;
  if (n > 0 && target.charCodeAt(0) === 43) {
    plus = 1;
    i = 1;
  }
  const digits = n - i;
  if (digits < 1 || digits > MAX_DIGITS) return -1;
  let value = 0;
  for (; i < n; i++) {
    const d = target.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  // The digit count keeps leading zeros ("0065…" is not "65…").
  return (value * 16 + digits) * 2 + plus + 1;
}

function decode(key: number): string {
  let rest = key - 1;
  const plus = rest % 2;
  rest = (rest - plus) / 2;
  const digits = rest % 16;
  const value = (rest - digits) / 16;
  return (plus ? "+" : "") + String(value).padStart(digits, "0");
}

function slotOf(key: number, mask: number): number {
  const lo = (key % 4294967296) | 0;
  const hi = Math.floor(key / 4294967296) | 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & mask;
}

export class TargetCounts {
  private keys = new Float64Array(1024); // entry → encoded target
  private counts = new Float64Array(1024); // entry → its count
  private size = 0;
  private slots = new Int32Array(2048); // hash slot → entry + 1 (0: empty); linear probing
  private others = new Map<string, number>();

  get(target: string): number {
    const key = encode(target);
    if (key < 0) return this.others.get(target) ?? 0;
    const entry = this.find(key);
    return entry < 0 ? 0 : this.counts[entry]!;
  }

  set(target: string, count: number): void {
    const key = encode(target);
    if (key < 0) {
      this.others.set(target, count);
      return;
    }
    const mask = this.slots.length - 1;
    let slot = slotOf(key, mask);
    for (;;) {
      const at = this.slots[slot]!;
      if (at === 0) break;
      if (this.keys[at - 1] === key) {
        this.counts[at - 1] = count;
        return;
      }
      slot = (slot + 1) & mask;
    }
    if (this.size === this.keys.length) this.growEntries();
    this.keys[this.size] = key;
    this.counts[this.size] = count;
    this.size += 1;
    this.slots[slot] = this.size;
    if (this.size * 2 > this.slots.length) this.rehash(this.slots.length * 2);
  }

  clear(): void {
    this.keys = new Float64Array(1024);
    this.counts = new Float64Array(1024);
    this.size = 0;
    this.slots = new Int32Array(2048);
    this.others.clear();
  }

  /** Numbers in the order they were first counted, then the other targets in theirs. */
  *[Symbol.iterator](): Generator<[string, number]> {
    for (let entry = 0; entry < this.size; entry++) yield [decode(this.keys[entry]!), this.counts[entry]!];
    yield* this.others;
  }

  private find(key: number): number {
    const mask = this.slots.length - 1;
    let slot = slotOf(key, mask);
    for (;;) {
      const at = this.slots[slot]!;
      if (at === 0) return -1;
      if (this.keys[at - 1] === key) return at - 1;
      slot = (slot + 1) & mask;
    }
  }

  private growEntries(): void {
    const keys = new Float64Array(this.keys.length * 2);
    keys.set(this.keys);
    this.keys = keys;
    const counts = new Float64Array(this.counts.length * 2);
    counts.set(this.counts);
    this.counts = counts;
  }

  private rehash(capacity: number): void {
    const slots = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let entry = 0; entry < this.size; entry++) {
      let slot = slotOf(this.keys[entry]!, mask);
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = entry + 1;
    }
    this.slots = slots;
  }
}
