-- DropForeignKey
ALTER TABLE "recipients" DROP CONSTRAINT "recipients_campaign_id_fkey";

-- DropIndex
DROP INDEX "recipients_campaign_id_batch_sequence_idx";

-- DropIndex
DROP INDEX "recipients_campaign_id_phone_key";

-- AlterTable
ALTER TABLE "recipients" DROP CONSTRAINT "recipients_pkey",
DROP COLUMN "id",
ALTER COLUMN "batch_sequence" SET NOT NULL,
ADD CONSTRAINT "recipients_pkey" PRIMARY KEY ("campaign_id", "batch_sequence", "phone");

