-- Retention and erasure (README "Retention and erasure"). Expand only: nullable columns and two partial
-- indexes; nothing existing is altered, renamed or dropped, so processes of the previous release keep working.

-- `smsblast purge`: a finished campaign's recipients, rejects, uploads and delivery events are deleted; its
-- row stays. The counts that were derived from the recipient rows are kept here first (recipients by state,
-- the most frequent failure reasons), and status, list, API and console read them once they are set.
ALTER TABLE "campaigns" ADD COLUMN "recipient_states" JSONB;
ALTER TABLE "campaigns" ADD COLUMN "failure_reasons" JSONB;
-- When the purge finished deleting (NULL with recipient_states set: a purge that stopped half-way; the next
-- run finishes it).
ALTER TABLE "campaigns" ADD COLUMN "purged_at" TIMESTAMPTZ(3);
-- The purge's work list: finished campaigns not purged yet, oldest first.
CREATE INDEX "campaigns_purge_candidates_idx" ON "campaigns" ("finished_at") WHERE "purged_at" IS NULL;

-- `smsblast forget`: an erased number stays suppressed as HMAC-SHA256(key, E.164) only, hex, with the key's id
-- (the key is derived from SUPPRESSION_HASH_SECRET and never stored). Its `phone` becomes 'forgotten:<hmac>',
-- so the primary key stays unique and no plain-text comparison can ever match it; `created_at` (when it was
-- suppressed), `reason` and `source` are kept.
ALTER TABLE "suppressions" ADD COLUMN "phone_hmac" TEXT;
ALTER TABLE "suppressions" ADD COLUMN "hmac_key_id" TEXT;
ALTER TABLE "suppressions" ADD COLUMN "forgotten_at" TIMESTAMPTZ(3);
CREATE UNIQUE INDEX "suppressions_phone_hmac_key" ON "suppressions" ("phone_hmac");
