/**
 * Who may do what through the HTTP API: one row per permission, naming the least role that has it. Roles
 * are ordered (viewer < operator < admin), each one holding everything of the roles below it. Routes name
 * a permission, never a role, so a change of policy is a change of this table only.
 */
export const API_ROLES = ["viewer", "operator", "admin"] as const;
export type ApiRole = (typeof API_ROLES)[number];

export const PERMISSIONS = {
  /** Campaigns, their status and counts, the audit log: no phone number in any of it. */
  "campaigns:read": "viewer",
  /** Uploads, launches, pause / resume / cancel, test sends. */
  "campaigns:write": "operator",
  /** Per-recipient reports and rejects hold phone numbers. */
  "reports:read": "operator",
  /** Contacts, segments and suppression additions. */
  "audience:write": "operator",
  /** Removing a number from the suppression list would let a campaign text someone who opted out. */
  "suppressions:remove": "admin",
  "templates:write": "admin",
  "tokens:manage": "admin",
  /** GET /metrics on the API port: counts and timings, no phone number. */
  "metrics:read": "viewer",
  /** Bull Board's pages: job ids and states only, no phone number. */
  "queues:read": "viewer",
  /** Bull Board's actions (retry, promote, clean): they act on the queues directly. */
  "queues:write": "admin",
} as const satisfies Record<string, ApiRole>;
export type Permission = keyof typeof PERMISSIONS;

export function roleAllows(role: ApiRole, permission: Permission): boolean {
  return API_ROLES.indexOf(role) >= API_ROLES.indexOf(PERMISSIONS[permission]);
}
