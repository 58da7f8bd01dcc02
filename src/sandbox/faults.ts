import { FAULT_KINDS, type FaultKind } from "./options.ts";

/** Deterministic faults queued by failNext, consumed one per send request in FIFO order. */
export class FaultQueue {
  // Run-length entries so failNext(1_000_000, ...) costs nothing.
  private readonly runs: { kind: FaultKind; remaining: number }[] = [];

  add(count: number, kind: FaultKind): void {
    if (!Number.isInteger(count) || count < 0) throw new RangeError("failNext count must be a non-negative integer");
    if (!FAULT_KINDS.includes(kind)) throw new RangeError(`failNext kind must be one of ${FAULT_KINDS.join(", ")}`);
    if (count === 0) return;
    const last = this.runs.at(-1);
    if (last?.kind === kind) last.remaining += count;
    else this.runs.push({ kind, remaining: count });
  }

  take(): FaultKind | undefined {
    const head = this.runs[0];
    if (!head) return undefined;
    head.remaining -= 1;
    if (head.remaining === 0) this.runs.shift();
    return head.kind;
  }

  pending(): number {
    return this.runs.reduce((sum, run) => sum + run.remaining, 0);
  }

  clear(): void {
    this.runs.length = 0;
  }
}
