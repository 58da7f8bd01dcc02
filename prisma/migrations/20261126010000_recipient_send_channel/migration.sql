-- AlterTable
ALTER TABLE "recipients" ADD COLUMN     "send_channel" TEXT;

