import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyError } from "fastify";
import { isUserError } from "../../model/errors.ts";
import type { ApiContext } from "../../runtime/api-context.ts";
import type { ApiApp } from "../api-app.ts";
import { registerConsoleSession } from "./console-session.ts";
import { html } from "./html.ts";
import { page } from "./layout.ts";
import { sendPage } from "./respond.ts";
import { registerCampaignList } from "./screens/campaigns.ts";
import { registerSignIn } from "./screens/sign-in.ts";
import { registerNewCampaign } from "./screens/new-campaign.ts";
import { registerUploadSteps } from "./screens/upload-steps.ts";
import { registerCampaignPage } from "./screens/campaign.ts";
import { registerAudience } from "./screens/audience.ts";
import { registerSettings } from "./screens/settings.ts";
import { registerAudienceCampaign } from "./screens/audience-campaign.ts";

// Beside this file when run from source (tsx); `npm run build` compiles only TypeScript to dist/, so the
// compiled file finds them in the source tree, which the image keeps (Dockerfile: COPY . .).
const SOURCE_ASSETS = fileURLToPath(new URL("./assets/", import.meta.url));
const ASSETS = existsSync(SOURCE_ASSETS)
  ? SOURCE_ASSETS
  : fileURLToPath(new URL("../../../../src/http/console/assets/", import.meta.url));
// htmx is served by this process from its npm package (version pinned in package.json): no CDN, works offline.
const HTMX_DIST = path.join(path.dirname(fileURLToPath(import.meta.resolve("htmx.org/package.json"))), "dist");

/**
 * The web console: server-rendered pages on the API's server, calling the same use cases as the API routes.
 * Encapsulated, so its form parser, session hooks and HTML error pages apply to its routes only.
 */
export async function registerConsole(app: ApiApp, ctx: ApiContext): Promise<void> {
  await app.register(async (scope: ApiApp) => {
    registerConsoleSession(scope, ctx);
    await scope.register(fastifyStatic, {
      root: ASSETS,
      prefix: "/assets/",
      index: false,
      cacheControl: true,
      maxAge: "1h",
    });
    await scope.register(fastifyStatic, {
      root: HTMX_DIST,
      prefix: "/assets/vendor/",
      decorateReply: false,
      index: false,
      allowedPath: (pathname) => pathname === "/htmx.min.js",
      maxAge: "1d",
    });
    scope.setErrorHandler((error: FastifyError, request, reply) => {
      // A use case's refusal that no screen turned into a field error, or a failure: plain words, never a stack.
      const known = isUserError(error);
      if (!known) request.log.error({ err: error }, "console request failed");
      const status = known ? (error.kind === "not-found" ? 404 : error.kind === "conflict" ? 409 : 400) : 500;
      return sendPage(
        reply.code(status),
        page({
          title: known ? "Not possible" : "Something went wrong",
          viewer: request.viewer,
          body: html`<h1>${known ? "That is not possible" : "Something went wrong"}</h1>
            <p>
              ${
                known
                  ? error.message
                  : `The server could not finish this. Nothing you see here is lost; try again, and if it keeps
                   happening give the administrator this reference: ${request.id}.`
              }
            </p>
            <p><a href="/campaigns">Back to campaigns</a></p>`,
        }),
      );
    });
    registerSignIn(scope, ctx);
    registerCampaignList(scope, ctx);
    registerNewCampaign(scope, ctx);
    registerUploadSteps(scope, ctx);
    registerCampaignPage(scope, ctx);
    registerAudience(scope, ctx);
    registerSettings(scope, ctx);
    registerAudienceCampaign(scope, ctx);
  });
}

export function notFoundPage() {
  return page({
    title: "Not found",
    body: html`<h1>There is no such page</h1>
      <p><a href="/campaigns">Go to the campaigns</a></p>`,
  });
}
