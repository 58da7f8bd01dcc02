import { z } from "zod";
import type { ApiContext } from "../../runtime/api-context.ts";
import type { ApiApp } from "../api-app.ts";

const Readiness = z.object({
  ready: z.boolean(),
  checks: z.object({ postgres: z.string(), redis: z.string(), migrations: z.string() }),
});

export function registerHealthRoutes(app: ApiApp, ctx: ApiContext): void {
  app.get(
    "/healthz",
    {
      schema: {
        tags: ["health"],
        summary: "the process is up",
        security: [],
        response: { 200: z.object({ status: z.literal("ok") }) },
      },
    },
    () => ({ status: "ok" as const }),
  );
  app.get(
    "/readyz",
    {
      schema: {
        tags: ["health"],
        summary: "Postgres and Redis reachable, migrations current",
        security: [],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const report = await ctx.checkReady();
      return reply.code(report.ready ? 200 : 503).send(report);
    },
  );
}
