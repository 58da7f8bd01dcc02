import { ProviderError, ProviderUnavailableError } from "../engagelab/errors.ts";
import type { TemplatesApi } from "../engagelab/templates-api.ts";

// The template API is the port the template commands and the pre-flight check use; its types are the
// front doors' vocabulary for templates.
export {
  describeApprovalStatus,
  describeTemplateType,
  type ApprovalStatus,
  type SmsTemplate,
  type TemplateChanges,
  type TemplatesApi,
  type TemplateType,
} from "../engagelab/templates-api.ts";

/** A provider failure as a front door shows it: one line with the provider's code, no stack. */
export function userFacingProviderError(error: unknown): unknown {
  return error instanceof ProviderError ? new ProviderUnavailableError(error) : error;
}

/** The template API with provider failures turned into user-facing errors (TemplateNotFoundError and bad input already are). */
export function templateCatalog(api: TemplatesApi): TemplatesApi {
  return new Proxy(api, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (error) {
          throw userFacingProviderError(error);
        }
      };
    },
  });
}
