import { createHmac } from "node:crypto";

/**
 * The keyed hash of a forgotten number (`smsblast forget`): HMAC-SHA256 under a key derived from the
 * deployment secret SUPPRESSION_HASH_SECRET. A plain SHA-256 of a phone number is reversed by hashing every
 * number of the country (10^8 of them take seconds); without the key these hashes say nothing.
 *
 * The same HMAC is computed in SQL for set-based checks (a launch's million staged rows), from PostgreSQL's
 * built-in sha256() and the key's inner and outer pads (RFC 2104), so no extension is needed. The key
 * material is private to this object: it never appears in JSON, inspection or logs.
 */
export class PhoneHasher {
  readonly #key: Buffer;
  /** Names the key (not secret): each hashed entry records it, so a changed secret is noticed, not ignored. */
  readonly keyId: string;

  constructor(secret: string) {
    this.#key = createHmac("sha256", secret).update("smsblast suppression hash v1", "utf8").digest();
    this.keyId = createHmac("sha256", this.#key).update("key id", "utf8").digest("hex").slice(0, 16);
  }

  /** Hex HMAC-SHA256 of an E.164 number (or any text) under this deployment's key. */
  hash(value: string): string {
    return createHmac("sha256", this.#key).update(value, "utf8").digest("hex");
  }

  /**
   * HMAC(K, m) = SHA256((K ⊕ opad) ‖ SHA256((K ⊕ ipad) ‖ m)): the two padded keys as hex, for the SQL form
   * (src/store/forgotten-number-repository.ts). A 32-byte key is zero-padded to the 64-byte block.
   */
  pads(): { inner: string; outer: string } {
    const block = Buffer.alloc(64);
    this.#key.copy(block);
    const inner = Buffer.from(block.map((b) => b ^ 0x36));
    const outer = Buffer.from(block.map((b) => b ^ 0x5c));
    return { inner: inner.toString("hex"), outer: outer.toString("hex") };
  }

  toJSON(): { keyId: string } {
    return { keyId: this.keyId };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `PhoneHasher { keyId: '${this.keyId}' }`;
  }
}
