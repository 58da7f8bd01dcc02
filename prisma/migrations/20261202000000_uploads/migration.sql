-- CSV uploads of the HTTP API (POST /api/v1/uploads): the file's rows kept raw until a mapping says which
-- column is the phone; then every row's judgement (normalised number or reject reason). Both are deleted
-- with their upload when it expires.

-- CreateTable
CREATE TABLE "uploads" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "created_by" TEXT NOT NULL,
    "filename" TEXT,
    "status" TEXT NOT NULL DEFAULT 'receiving',
    "columns" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "delimiter" TEXT NOT NULL,
    "encoding" TEXT NOT NULL,
    "row_count" INTEGER NOT NULL DEFAULT 0,
    "byte_count" BIGINT NOT NULL DEFAULT 0,
    "mapping" JSONB,
    "campaign_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "uploads_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "upload_rows" (
    "upload_id" UUID NOT NULL,
    "row" INTEGER NOT NULL,
    "cells" TEXT[],

    CONSTRAINT "upload_rows_pkey" PRIMARY KEY ("upload_id","row")
);

-- CreateTable
CREATE TABLE "upload_judgements" (
    "upload_id" UUID NOT NULL,
    "row" INTEGER NOT NULL,
    "phone" TEXT,
    "reject_reason" TEXT,
    "segments" INTEGER,

    CONSTRAINT "upload_judgements_pkey" PRIMARY KEY ("upload_id","row")
);

-- CreateIndex
CREATE INDEX "uploads_expires_at_idx" ON "uploads"("expires_at");

-- AddForeignKey
ALTER TABLE "upload_rows" ADD CONSTRAINT "upload_rows_upload_id_fkey" FOREIGN KEY ("upload_id") REFERENCES "uploads"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "upload_judgements" ADD CONSTRAINT "upload_judgements_upload_id_fkey" FOREIGN KEY ("upload_id") REFERENCES "uploads"("id") ON DELETE CASCADE ON UPDATE CASCADE;
