-- `smsblast retry-failed`: a campaign re-sending another's retryable failures names that campaign.
-- Expand-only: a nullable column, so workers of the previous release keep running during a rolling upgrade.

-- AlterTable
ALTER TABLE "campaigns" ADD COLUMN "retry_of" UUID;
