import type pg from "pg";
import { copyIn } from "./copy-writer.ts";
import { withTransaction, type Database } from "./database.ts";
import type { StagingSource } from "./campaign-repository.ts";
import { UserError } from "../model/errors.ts";

/** Contacts with any of `tags` (all contacts when empty) whose attributes contain `attributes`. */
export interface AudienceFilter {
  name: string;
  tags: string[];
  attributes: Record<string, string>;
}

export class AudienceError extends UserError {
  override name = "AudienceError";
  constructor(message: string) {
    super("audience_not_found", message, { kind: "not-found", field: "audience" });
  }
}

/** A saved segment of that name, else the contacts carrying that tag. */
export async function resolveAudience(db: Database, nameOrTag: string): Promise<AudienceFilter> {
  const segment = await db.prisma.segment.findUnique({ where: { name: nameOrTag } });
  if (segment)
    return {
      name: `segment:${segment.name}`,
      tags: segment.tags,
      attributes: segment.attributes as Record<string, string>,
    };
  const { rows } = await db.pool.query(`SELECT 1 FROM contacts WHERE tags @> ARRAY[$1]::text[] LIMIT 1`, [nameOrTag]);
  if (rows.length === 0) throw new AudienceError(`No saved segment and no contact tagged "${nameOrTag}"`);
  return { name: `tag:${nameOrTag}`, tags: [nameOrTag], attributes: {} };
}

/**
 * Stages an audience straight from `contacts` into the campaign's staging table with one INSERT … SELECT:
 * the rows never travel through Node, so memory stays flat whatever the audience size. `paramColumns`
 * maps template variables to contact attributes; a contact lacking one is a reject, not "Hi null".
 */
export function stageAudience(filter: AudienceFilter, paramColumns: Record<string, string>): StagingSource {
  const variables = Object.keys(paramColumns);
  const columns = variables.map((v) => paramColumns[v]!);
  return async (client) => {
    const { rowCount } = await client.query(
      `INSERT INTO ingest_rows (row_number, phone, raw, reject_reason, params)
       SELECT (row_number() OVER (ORDER BY c.id))::int, CASE WHEN r.reason IS NULL THEN c.phone END, c.phone, r.reason,
              CASE WHEN cardinality($3::text[]) > 0 THEN
                (SELECT jsonb_object_agg(m.variable, c.attributes->>m.col) FROM unnest($3::text[], $4::text[]) AS m(variable, col))
              END
       FROM contacts c
       CROSS JOIN LATERAL (
         SELECT CASE
           WHEN c.opted_out THEN 'opted out'
           ELSE (SELECT 'missing attribute "' || col || '"' FROM unnest($4::text[]) AS col WHERE NOT (c.attributes ? col) LIMIT 1)
         END AS reason
       ) r
       WHERE (cardinality($1::text[]) = 0 OR c.tags && $1::text[]) AND c.attributes @> $2::jsonb`,
      [filter.tags, JSON.stringify(filter.attributes), variables, columns],
    );
    return rowCount ?? 0;
  };
}

export interface ContactRow {
  rowNumber: number;
  phone: string | null;
  rejectReason: string | null;
  raw: string;
  attributes: Record<string, string>;
  tags: string[];
}

export interface ContactImportReport {
  rows: number;
  inserted: number;
  updated: number;
  rejects: Array<{ rowNumber: number; raw: string; reason: string }>;
}

/**
 * Upserts contacts in one transaction (COPY into staging, then INSERT … ON CONFLICT): attributes are
 * merged, tags unioned; the opt-out flag is never cleared by an import.
 */
export async function importContacts(
  db: Database,
  rows: AsyncIterable<ContactRow>,
  maxRejectsKept = 1_000,
): Promise<ContactImportReport> {
  return withTransaction(db.pool, async (client) => {
    await client.query(
      `CREATE TEMP TABLE contact_import (row_number int, phone text, attributes jsonb, tags text[]) ON COMMIT DROP`,
    );
    const rejects: ContactImportReport["rejects"] = [];
    const count = await copyIn(
      client,
      `COPY contact_import (row_number, phone, attributes, tags) FROM STDIN`,
      async (writer) => {
        let n = 0;
        for await (const row of rows) {
          n++;
          if (row.phone === null) {
            if (rejects.length < maxRejectsKept)
              rejects.push({ rowNumber: row.rowNumber, raw: row.raw, reason: row.rejectReason ?? "invalid" });
            continue;
          }
          await writer.writeRow([row.rowNumber, row.phone, JSON.stringify(row.attributes), toPgArray(row.tags)]);
        }
        return n;
      },
    );
    const { rows: result } = await client.query<{ inserted: string; updated: string }>(
      `WITH attrs AS (
         -- A number listed twice in one file merges like a re-import: later rows win per attribute.
         SELECT DISTINCT ON (ci.phone, e.key) ci.phone, e.key, e.value
         FROM contact_import ci, jsonb_each(ci.attributes) e ORDER BY ci.phone, e.key, ci.row_number DESC
       ), merged_attrs AS (
         SELECT phone, jsonb_object_agg(key, value) AS attributes FROM attrs GROUP BY phone
       ), merged_tags AS (
         SELECT phone, array_agg(DISTINCT t ORDER BY t) AS tags FROM contact_import ci, unnest(ci.tags) AS t GROUP BY phone
       ), merged AS (
         SELECT p.phone, coalesce(a.attributes, '{}'::jsonb) AS attributes, coalesce(t.tags, '{}'::text[]) AS tags
         FROM (SELECT DISTINCT phone FROM contact_import) p
         LEFT JOIN merged_attrs a USING (phone) LEFT JOIN merged_tags t USING (phone)
       ), upserted AS (
         INSERT INTO contacts (phone, attributes, tags)
         SELECT phone, attributes, tags FROM merged
         ON CONFLICT (phone) DO UPDATE SET
           attributes = contacts.attributes || EXCLUDED.attributes,
           tags = ARRAY(SELECT DISTINCT t FROM unnest(contacts.tags || EXCLUDED.tags) AS t ORDER BY t),
           updated_at = now()
         RETURNING (xmax = 0) AS inserted
       )
       SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM upserted`,
    );
    return { rows: count, inserted: Number(result[0]!.inserted), updated: Number(result[0]!.updated), rejects };
  });
}

/** A text[] literal for COPY: every element quoted, so commas and braces in tags are safe. */
function toPgArray(values: string[]): string {
  return `{${values.map((v) => `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`).join(",")}}`;
}

export async function saveSegment(
  db: Database,
  filter: Omit<AudienceFilter, "name"> & { name: string },
): Promise<void> {
  await db.prisma.segment.upsert({
    where: { name: filter.name },
    create: { name: filter.name, tags: filter.tags, attributes: filter.attributes },
    update: { tags: filter.tags, attributes: filter.attributes },
  });
}

export async function listSegments(
  db: Database,
): Promise<Array<{ name: string; tags: string[]; attributes: unknown; contacts: number }>> {
  const segments = await db.prisma.segment.findMany({ orderBy: { name: "asc" } });
  const result = [];
  for (const s of segments) {
    const { rows } = await db.pool.query<{ n: string }>(
      // Sendable = what a campaign would really send to: not opted out and not on the suppression list
      // (a contact imported after its number was suppressed is still suppressed).
      `SELECT count(*) AS n FROM contacts c WHERE (cardinality($1::text[]) = 0 OR c.tags && $1::text[]) AND c.attributes @> $2::jsonb
         AND NOT c.opted_out AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.phone = c.phone)`,
      [s.tags, JSON.stringify(s.attributes)],
    );
    result.push({ name: s.name, tags: s.tags, attributes: s.attributes, contacts: Number(rows[0]!.n) });
  }
  return result;
}

export async function setContactOptOut(client: pg.Pool | pg.PoolClient, phones: string[]): Promise<void> {
  await client.query(`UPDATE contacts SET opted_out = true, updated_at = now() WHERE phone = ANY($1::text[])`, [
    phones,
  ]);
}

/** Every contact tag with how many contacts carry it and how many of those may be texted (not opted out). */
export async function listContactTags(
  db: Database,
): Promise<Array<{ tag: string; contacts: number; sendable: number }>> {
  const { rows } = await db.pool.query<{ tag: string; contacts: number; sendable: number }>(
    `SELECT tag, count(*)::int AS contacts, (count(*) FILTER (WHERE NOT opted_out))::int AS sendable
     FROM contacts, unnest(tags) AS tag GROUP BY tag ORDER BY tag`,
  );
  return rows;
}
