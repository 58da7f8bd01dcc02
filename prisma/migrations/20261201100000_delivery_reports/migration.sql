-- Delivery reports (README "Delivery reports"): what the handset got, after what the provider accepted.

-- AlterEnum: the states a delivery report moves a recipient to (src/model/delivery-status.ts ranks them).
ALTER TYPE "RecipientState" ADD VALUE 'sent';
ALTER TYPE "RecipientState" ADD VALUE 'delivered';
ALTER TYPE "RecipientState" ADD VALUE 'undelivered';
ALTER TYPE "RecipientState" ADD VALUE 'no_report';

-- AlterTable
ALTER TABLE "recipients" ADD COLUMN     "delivered_at" TIMESTAMPTZ(3),
ADD COLUMN     "reported_at" TIMESTAMPTZ(3),
ADD COLUMN     "delivery_error_code" TEXT,
ADD COLUMN     "delivery_error_message" TEXT,
ADD COLUMN     "cost" DECIMAL(12,6),
ADD COLUMN     "currency" TEXT;

-- CreateIndex: custom-messages reports carry no custom_args, only message_id. Partial, so the bulk
-- recipients of v1/messages and legacy (message_id NULL) add nothing to it: a full second index is what
-- made the million-row insert 3x slower (README "Performance").
CREATE INDEX "recipients_message_id_idx" ON "recipients"("message_id") WHERE "message_id" IS NOT NULL;

-- CreateTable: every callback row as received (it holds phone numbers: purged once applied and old enough).
CREATE TABLE "delivery_events" (
    "id" BIGSERIAL NOT NULL,
    "source" TEXT NOT NULL,
    "row" JSONB NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    -- pending | applied | ignored | unmatched
    "outcome" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    "applied_at" TIMESTAMPTZ(3),
    "campaign_id" UUID,

    CONSTRAINT "delivery_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex: the applier's work list; applied rows leave it.
CREATE INDEX "delivery_events_pending_idx" ON "delivery_events"("next_attempt_at", "id") WHERE "outcome" = 'pending';

-- CreateIndex: retention purges a campaign's rows and applied rows by age.
CREATE INDEX "delivery_events_campaign_id_idx" ON "delivery_events"("campaign_id");

-- CreateTable: callback nonces, written in the same statement as their rows (replays change nothing).
CREATE TABLE "callback_nonces" (
    "nonce" TEXT NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    "row_count" INTEGER NOT NULL,

    CONSTRAINT "callback_nonces_pkey" PRIMARY KEY ("nonce")
);

CREATE INDEX "callback_nonces_received_at_idx" ON "callback_nonces"("received_at");
