-- AlterTable
ALTER TABLE "schedules" ADD COLUMN     "template_check" BOOLEAN NOT NULL DEFAULT true;

