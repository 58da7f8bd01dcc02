-- AlterTable
ALTER TABLE "batches" ADD COLUMN     "last_attempt_ambiguous" BOOLEAN NOT NULL DEFAULT false;

