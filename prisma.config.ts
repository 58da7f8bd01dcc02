// Prisma CLI configuration (generate, migrate dev/diff while developing).
// At run time and in CI, migrations are applied by src/store/migrate.ts, which needs no Prisma CLI.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/smsblast" },
});
