/** The sandbox's in-memory template store (seed 003's template fields), shared by the template endpoints. */
export type ApprovalStatus = 0 | 1 | -1 | -2;
export const APPROVAL_STATUSES: readonly ApprovalStatus[] = [0, 1, -1, -2];

export interface SmsTemplate {
  template_id: number;
  template_name: string;
  msg_type: number;
  template_type: number;
  template_content: string;
  approval_status: ApprovalStatus;
  approval_message: string;
  sign_id?: number;
  create_time: string;
  update_time: string;
}

export const MAX_NAME_CHARS = 64;
export const MAX_CONTENT_CHARS = 512;
export const MAX_PAGE_SIZE = 100;
const FIRST_CREATED_ID = 1000;
const INTERNATIONAL_MSG_TYPE = 2;

/** Provider timestamps look like "2022-08-25T14:35:48+0800"; the sandbox reports UTC. */
function providerTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}+0000`;
}

export function charCount(text: string): number {
  return [...text].length;
}

export interface NewTemplate {
  template_name: string;
  template_content: string;
  template_type: number;
  msg_type?: number;
  sign_id?: number;
}

/** A legacy template the sandbox starts with (option `legacyTemplates`); approved unless told otherwise. */
export interface SeedTemplate {
  id: number;
  content: string;
  name?: string;
  approvalStatus?: ApprovalStatus;
}

/** Template 1, approved, unless the sandbox is given its own list. Legacy templates use `%var%` (seed 003). */
export const DEFAULT_SEED_TEMPLATES: readonly SeedTemplate[] = [
  { id: 1, name: "sandbox-notice", content: "Your order %order% has shipped" },
];

/**
 * The legacy platform's templates (seed 003): integer ids, `%var%` variables. The template API serves them and
 * legacy v1/send refuses a template id that is not here or not approved. v1/messages templates are another
 * platform's (MessagesTemplates below).
 */
export class TemplateStore {
  private readonly byId = new Map<number, SmsTemplate>();
  private nextId = FIRST_CREATED_ID;

  constructor(
    private readonly nowMs: () => number,
    seeds: readonly SeedTemplate[] = DEFAULT_SEED_TEMPLATES,
  ) {
    const now = providerTime(nowMs());
    for (const seed of seeds) {
      if (!Number.isSafeInteger(seed.id) || seed.id <= 0)
        throw new RangeError("legacyTemplates: id must be a positive integer");
      this.byId.set(seed.id, {
        template_id: seed.id,
        template_name: seed.name ?? `sandbox-${seed.id}`,
        msg_type: INTERNATIONAL_MSG_TYPE,
        template_type: 1,
        template_content: seed.content,
        approval_status: seed.approvalStatus ?? 1,
        approval_message: "",
        create_time: now,
        update_time: now,
      });
    }
  }

  get(id: number): SmsTemplate | undefined {
    const template = this.byId.get(id);
    return template && { ...template };
  }

  list(): SmsTemplate[] {
    return [...this.byId.values()].sort((a, b) => a.template_id - b.template_id).map((t) => ({ ...t }));
  }

  isNameTaken(name: string, exceptId?: number): boolean {
    for (const template of this.byId.values()) {
      if (template.template_name === name && template.template_id !== exceptId) return true;
    }
    return false;
  }

  add(fields: NewTemplate, approvalStatus: ApprovalStatus): SmsTemplate {
    const now = providerTime(this.nowMs());
    const template: SmsTemplate = {
      template_id: this.nextId++,
      template_name: fields.template_name,
      msg_type: fields.msg_type ?? INTERNATIONAL_MSG_TYPE,
      template_type: fields.template_type,
      template_content: fields.template_content,
      approval_status: approvalStatus,
      approval_message: "",
      ...(fields.sign_id === undefined ? {} : { sign_id: fields.sign_id }),
      create_time: now,
      update_time: now,
    };
    this.byId.set(template.template_id, template);
    return { ...template };
  }

  update(id: number, changes: Partial<Omit<SmsTemplate, "template_id" | "create_time" | "update_time">>): boolean {
    const template = this.byId.get(id);
    if (!template) return false;
    Object.assign(template, changes, { update_time: providerTime(this.nowMs()) });
    return true;
  }

  setApproval(id: number, status: ApprovalStatus, message = ""): SmsTemplate | undefined {
    // Only a rejected template carries a review message, as in the seed.
    if (!this.update(id, { approval_status: status, approval_message: status === -1 ? message : "" })) return undefined;
    return this.get(id);
  }

  remove(id: number): boolean {
    return this.byId.delete(id);
  }
}

export interface ApiError {
  code: number;
  message: string;
}

/**
 * The current SMS platform's templates (v1/messages): string ids, managed in a console the sandbox does not
 * imitate. Every id is taken to exist except those the sandbox was told do not (4001), and the magic ids of
 * magic-templates.ts.
 */
export class MessagesTemplates {
  private readonly missing = new Set<string>();

  markMissing(ids: readonly string[]): void {
    for (const id of ids) this.missing.add(id);
  }

  exists(id: string): boolean {
    return !this.missing.has(id);
  }

  clear(): void {
    this.missing.clear();
  }
}
