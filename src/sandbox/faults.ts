import { validateFault, type Fault, type FaultDetail, type FaultKind } from "./options.ts";

/** Deterministic faults queued by failNext, consumed one per send request in FIFO order. */
export class FaultQueue {
  // Run-length entries so failNext(1_000_000, ...) costs nothing.
  private readonly runs: { fault: Fault; remaining: number }[] = [];

  add(count: number, kind: FaultKind, detail: FaultDetail = {}): void {
    if (!Number.isInteger(count) || count < 0) throw new RangeError("failNext count must be a non-negative integer");
    const fault = validateFault(kind, { ...detail });
    if (count === 0) return;
    const last = this.runs.at(-1);
    if (last && sameFault(last.fault, fault)) last.remaining += count;
    else this.runs.push({ fault, remaining: count });
  }

  take(): Fault | undefined {
    const head = this.runs[0];
    if (!head) return undefined;
    head.remaining -= 1;
    if (head.remaining === 0) this.runs.shift();
    return head.fault;
  }

  pending(): number {
    return this.runs.reduce((sum, run) => sum + run.remaining, 0);
  }

  clear(): void {
    this.runs.length = 0;
  }
}

function sameFault(a: Fault, b: Fault): boolean {
  return (
    a.kind === b.kind &&
    a.status === b.status &&
    a.code === b.code &&
    a.message === b.message &&
    a.accepted === b.accepted
  );
}
