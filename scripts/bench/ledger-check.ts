// After each send the sandbox's ledger must match PostgreSQL recipient by recipient: every recipient the
// campaign counts as accepted received once, and nothing else was received. Both sides are streamed (a 10M
// ledger is ~200 MB of JSON) into the same order-free digest: the count, and the sum and XOR of two 32-bit
// hashes of each number. Equal digests mean equal sets but for a 2^-128-ish accident.
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { recipientStateSql } from "../../src/store/recipient-state.ts";

interface Digest {
  count: number;
  sumA: number;
  xorA: number;
  sumB: number;
  xorB: number;
}

export interface LedgerCheck {
  /** Recipients PostgreSQL has as accepted. */
  accepted: number;
  /** Numbers in the sandbox's ledger. */
  received: number;
  /** Ledger numbers received more than once. */
  receivedTwice: number;
  matches: boolean;
}

const emptyDigest = (): Digest => ({ count: 0, sumA: 0, xorA: 0, sumB: 0, xorB: 0 });

function add(digest: Digest, text: string): void {
  let a = 0x811c9dc5; // FNV-1a
  let b = 0x9747b28c; // a murmur-style mix
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  digest.count += 1;
  digest.sumA = (digest.sumA + (a >>> 0)) % 4294967296;
  digest.xorA = (digest.xorA ^ a) >>> 0;
  digest.sumB = (digest.sumB + (b >>> 0)) % 4294967296;
  digest.xorB = (digest.xorB ^ b) >>> 0;
}

const same = (x: Digest, y: Digest) =>
  x.count === y.count && x.sumA === y.sumA && x.xorA === y.xorA && x.sumB === y.sumB && x.xorB === y.xorB;

async function recipientsDigest(pool: pg.Pool, campaignId: string): Promise<Digest> {
  if (!/^[0-9a-f-]{36}$/i.test(campaignId)) throw new Error(`not a campaign id: ${campaignId}`);
  const digest = emptyDigest();
  const client = await pool.connect();
  try {
    const stream = client.query(
      copyTo(
        `COPY (SELECT r.phone FROM recipients r JOIN batches b ON b.campaign_id = r.campaign_id AND b.sequence = r.batch_sequence
               WHERE r.campaign_id = '${campaignId}' AND ${recipientStateSql("r", "b")} = 'accepted') TO STDOUT`,
      ),
    );
    let carry = "";
    for await (const chunk of stream) {
      const lines = (carry + (chunk as Buffer).toString("utf8")).split("\n");
      carry = lines.pop()!;
      for (const line of lines) add(digest, line);
    }
    if (carry) add(digest, carry);
  } finally {
    client.release();
  }
  return digest;
}

async function ledgerDigest(sandboxUrl: string, api: string): Promise<{ digest: Digest; twice: number }> {
  const res = await fetch(`${sandboxUrl}/_sandbox/sent?api=${api}`, { signal: AbortSignal.timeout(600_000) });
  if (!res.ok || !res.body) throw new Error(`sandbox ledger: HTTP ${res.status}`);
  const digest = emptyDigest();
  let twice = 0;
  // {"+6591234567":1,...}: numbers carry no quote or backslash, so an entry is "…":N.
  const entry = /"([^"]*)":(\d+)/g;
  let carry = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    const text = carry + decoder.decode(chunk, { stream: true });
    entry.lastIndex = 0;
    let end = 0;
    for (let m = entry.exec(text); m; m = entry.exec(text)) {
      // an entry at the very end may be cut mid-count: leave it for the next chunk
      if (m.index + m[0].length === text.length) break;
      add(digest, m[1]!);
      if (Number(m[2]) > 1) twice += 1;
      end = m.index + m[0].length;
    }
    carry = text.slice(end);
  }
  for (const m of carry.matchAll(entry)) {
    add(digest, m[1]!);
    if (Number(m[2]) > 1) twice += 1;
  }
  return { digest, twice };
}

export async function checkLedgerAgainstRecipients(
  pool: pg.Pool,
  sandboxUrl: string,
  campaignId: string,
  api = "messages",
): Promise<LedgerCheck> {
  const [recipients, ledger] = await Promise.all([recipientsDigest(pool, campaignId), ledgerDigest(sandboxUrl, api)]);
  return {
    accepted: recipients.count,
    received: ledger.digest.count,
    receivedTwice: ledger.twice,
    matches: ledger.twice === 0 && same(recipients, ledger.digest),
  };
}
