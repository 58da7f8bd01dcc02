-- After each batch is recorded, "is any batch of this campaign still open?" (batch-repository.ts
-- completeCampaignIfDone) scanned the campaign's batches past every recorded one: work that grew with the send,
-- quadratic over a campaign's batches. The open ones only, indexed: one probe.
CREATE INDEX "batches_open_idx" ON "batches"("campaign_id") WHERE state IN ('pending', 'queued', 'sending', 'retrying');
