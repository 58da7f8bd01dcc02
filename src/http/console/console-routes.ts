import type { ApiApp } from "../api-app.ts";

/** The web console: server-rendered pages at `/`, calling the same use cases as the API routes. */
export function registerConsoleRoutes(app: ApiApp): void {
  app.get("/", { schema: { hide: true } }, async (_request, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .send(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>smsblast console</title></head>' +
          "<body><main><h1>smsblast console</h1></main></body></html>",
      ),
  );
}
