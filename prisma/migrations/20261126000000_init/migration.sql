-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "ProviderApi" AS ENUM ('messages', 'legacy', 'custom');

-- CreateEnum
CREATE TYPE "CampaignStatus" AS ENUM ('draft', 'scheduled', 'running', 'paused', 'completed', 'failed', 'cancelled');

-- CreateEnum
CREATE TYPE "UnknownOutcomePolicy" AS ENUM ('at_most_once', 'resend');

-- CreateEnum
CREATE TYPE "BatchState" AS ENUM ('pending', 'queued', 'sending', 'retrying', 'sent', 'partial', 'failed', 'unknown', 'cancelled');

-- CreateEnum
CREATE TYPE "RecipientState" AS ENUM ('pending', 'accepted', 'failed', 'unknown', 'cancelled');

-- CreateTable
CREATE TABLE "campaigns" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "template_id" TEXT NOT NULL,
    "template_params" JSONB NOT NULL DEFAULT '{}',
    "provider" "ProviderApi" NOT NULL DEFAULT 'messages',
    "status" "CampaignStatus" NOT NULL DEFAULT 'draft',
    "on_unknown" "UnknownOutcomePolicy" NOT NULL DEFAULT 'at_most_once',
    "send_options" JSONB NOT NULL DEFAULT '{}',
    "source" TEXT,
    "total_rows" INTEGER NOT NULL DEFAULT 0,
    "recipient_count" INTEGER NOT NULL DEFAULT 0,
    "rejected_count" INTEGER NOT NULL DEFAULT 0,
    "duplicate_count" INTEGER NOT NULL DEFAULT 0,
    "batch_count" INTEGER NOT NULL DEFAULT 0,
    "accepted_count" INTEGER NOT NULL DEFAULT 0,
    "failed_count" INTEGER NOT NULL DEFAULT 0,
    "unknown_count" INTEGER NOT NULL DEFAULT 0,
    "status_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "campaigns_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "batches" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "campaign_id" UUID NOT NULL,
    "sequence" INTEGER NOT NULL,
    "size" INTEGER NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "params" JSONB NOT NULL DEFAULT '{}',
    "state" "BatchState" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "plan_id" TEXT,
    "message_id" TEXT,
    "task_id" TEXT,
    "total_count" INTEGER,
    "accepted_count" INTEGER,
    "error_code" INTEGER,
    "error_message" TEXT,
    "first_claimed_at" TIMESTAMPTZ(3),
    "claimed_at" TIMESTAMPTZ(3),
    "sent_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "batches_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "recipients" (
    "id" BIGSERIAL NOT NULL,
    "campaign_id" UUID NOT NULL,
    "phone" TEXT NOT NULL,
    "row_number" INTEGER NOT NULL,
    "params" JSONB,
    "state" "RecipientState" NOT NULL DEFAULT 'pending',
    "batch_sequence" INTEGER,
    "sms_id" TEXT,
    "message_id" TEXT,
    "failure_code" INTEGER,
    "failure_message" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "recipients_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rejects" (
    "id" BIGSERIAL NOT NULL,
    "campaign_id" UUID NOT NULL,
    "row_number" INTEGER NOT NULL,
    "raw_value" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rejects_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "campaigns_created_at_idx" ON "campaigns"("created_at");

-- CreateIndex
CREATE UNIQUE INDEX "batches_idempotency_key_key" ON "batches"("idempotency_key");

-- CreateIndex
CREATE INDEX "batches_state_idx" ON "batches"("state");

-- CreateIndex
CREATE UNIQUE INDEX "batches_campaign_id_sequence_key" ON "batches"("campaign_id", "sequence");

-- CreateIndex
CREATE INDEX "recipients_campaign_id_batch_sequence_idx" ON "recipients"("campaign_id", "batch_sequence");

-- CreateIndex
CREATE UNIQUE INDEX "recipients_campaign_id_phone_key" ON "recipients"("campaign_id", "phone");

-- CreateIndex
CREATE INDEX "rejects_campaign_id_row_number_idx" ON "rejects"("campaign_id", "row_number");

-- AddForeignKey
ALTER TABLE "batches" ADD CONSTRAINT "batches_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "campaigns"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "recipients" ADD CONSTRAINT "recipients_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "campaigns"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rejects" ADD CONSTRAINT "rejects_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "campaigns"("id") ON DELETE CASCADE ON UPDATE CASCADE;
