import type { FastifyReply } from "fastify";
import type { Html } from "./html.ts";

export function sendPage(reply: FastifyReply, body: Html): FastifyReply {
  return reply.type("text/html; charset=utf-8").header("cache-control", "no-store").send(body.text);
}
