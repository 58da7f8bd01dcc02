import type { CallbackReporter } from "./callbacks.ts";
import type { SandboxLedger } from "./ledger.ts";
import type { SandboxKnobs } from "./options.ts";
import type { IdSequence } from "./random.ts";
import type { RequestIdCache } from "./request-id-cache.ts";
import type { MessagesTemplates, TemplateStore } from "./template-store.ts";

/** Shared state every endpoint works against. */
export interface SandboxContext {
  /** Current knob values; mutated in place by setOptions and /_sandbox/config. */
  readonly knobs: SandboxKnobs;
  readonly ids: IdSequence;
  readonly ledger: SandboxLedger;
  /** The legacy platform's templates: the template API and legacy v1/send. */
  readonly templates: TemplateStore;
  /** The current SMS platform's templates: v1/messages. */
  readonly messagesTemplates: MessagesTemplates;
  readonly requestIds: RequestIdCache;
  /** Numbers always refused as invalid (test hook: exact partial failures). */
  readonly refusedNumbers: Set<string>;
  /** Delivery callbacks of accepted numbers (inactive until a callback URL is set). */
  readonly reports: CallbackReporter;
  random(): number;
  nowMs(): number;
  log(msg: string): void;
}

/** Draws from the PRNG only for rates strictly between 0 and 1, so unused knobs do not shift seeded runs. */
export function chance(ctx: SandboxContext, rate: number): boolean {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  return ctx.random() < rate;
}

/** Whether the provider refuses this target as an invalid number. */
export function refusesNumber(ctx: SandboxContext, target: string, looksValid: boolean): boolean {
  return !looksValid || ctx.refusedNumbers.has(target) || chance(ctx, ctx.knobs.invalidRate);
}
