import type { Reply } from "./http.ts";

interface CachedReply {
  reply: Reply;
  storedAtMs: number;
}

/** request_id → first response. Map order is insertion order, so expired entries sit at the front. */
export class RequestIdCache {
  private readonly entries = new Map<string, CachedReply>();

  constructor(
    private readonly ttlMs: () => number,
    private readonly nowMs: () => number,
  ) {}

  get(requestId: string): Reply | undefined {
    const entry = this.entries.get(requestId);
    if (!entry) return undefined;
    if (this.isExpired(entry)) {
      this.entries.delete(requestId);
      return undefined;
    }
    return entry.reply;
  }

  set(requestId: string, reply: Reply): void {
    this.evictExpired();
    this.entries.delete(requestId);
    this.entries.set(requestId, { reply, storedAtMs: this.nowMs() });
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  private isExpired(entry: CachedReply): boolean {
    return this.nowMs() - entry.storedAtMs >= this.ttlMs();
  }

  private evictExpired(): void {
    for (const [requestId, entry] of this.entries) {
      if (!this.isExpired(entry)) break;
      this.entries.delete(requestId);
    }
  }
}
