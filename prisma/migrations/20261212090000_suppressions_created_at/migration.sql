-- A batch's first attempt asks whether anything was suppressed since its campaign was launched before it
-- probes the list number by number (batch-repository.ts loadPendingRecipients): this answers that from the index.
CREATE INDEX "suppressions_created_at_idx" ON "suppressions"("created_at");
