import { validateCron } from "../../campaigns/recurring-campaigns.ts";
import { isUserError } from "../../model/errors.ts";
import { html, type Html } from "./html.ts";
import { describedBy, fieldError } from "./layout.ts";
import { formatInZone, isTimeZone, timeZones, zonedTimeToInstant } from "./zoned-time.ts";

// The "when" step of both new-campaign flows: now, at a date and time in a named zone, or (database
// audiences only) on a cron schedule.

export type When =
  | { kind: "now"; zone: string }
  | { kind: "later"; startAt: Date; zone: string }
  | { kind: "cron"; cron: string; zone: string; next: Date };

type Query = Record<string, string | undefined>;

export function readWhen(q: Query): { when?: When; errors: Record<string, string> } {
  const zone = q.zone && isTimeZone(q.zone) ? q.zone : "UTC";
  if (q.when === "later") {
    const startAt = zonedTimeToInstant(q.date ?? "", q.time || "09:00", zone);
    if (!startAt) return { errors: { date: "choose a date (and a time) for a later start" } };
    if (startAt.getTime() <= Date.now())
      return {
        errors: { date: `${formatInZone(startAt, zone)} (${zone}) has passed: choose a time in the future, or Now` },
      };
    return { when: { kind: "later", startAt, zone }, errors: {} };
  }
  if (q.when === "cron") {
    const cron = (q.cron ?? "").trim();
    try {
      return { when: { kind: "cron", cron, zone, next: validateCron(cron, zone) }, errors: {} };
    } catch (error) {
      if (!isUserError(error)) throw error;
      return { errors: { cron: error.message } };
    }
  }
  return { when: { kind: "now", zone }, errors: {} };
}

export function describeWhen(when: When): string {
  if (when.kind === "now") return "as soon as you confirm";
  if (when.kind === "later") return `${formatInZone(when.startAt, when.zone)} (${when.zone})`;
  return `on the schedule ${when.cron} (${when.zone}); the first run ${formatInZone(when.next, when.zone)}`;
}

export function whenFieldset(options: { values: Query; errors: Record<string, string>; cron: boolean }): Html {
  const { values, errors } = options;
  const chosen = values.when ?? "now";
  const zone = values.zone && isTimeZone(values.zone) ? values.zone : "UTC";
  const radio = (value: string, label: string) =>
    html`<label class="choice"
      ><input type="radio" name="when" value="${value}" ${chosen === value ? html`checked` : ""} /> ${label}</label
    >`;
  return html`<fieldset>
    <legend>When</legend>
    ${radio("now", "Now")} ${radio("later", "At a date and time")}
    ${options.cron ? radio("cron", "Again and again, on a cron schedule") : ""}
    <label for="date">Date</label>
    <input type="date" id="date" name="date" value="${values.date ?? ""}" ${describedBy("date", errors.date)} />
    ${fieldError("date", errors.date)}
    <label for="time">Time</label>
    <input type="time" id="time" name="time" value="${values.time ?? ""}" />
    ${
      options.cron
        ? html`<label for="cron">Cron schedule</label>
            <p class="hint" id="cron-hint">
              Five fields: minute hour day month weekday. <code>0 9 * * MON</code> is every Monday at 09:00.
            </p>
            <input
              type="text"
              id="cron"
              name="cron"
              value="${values.cron ?? ""}"
              ${describedBy("cron", errors.cron, true)}
            />
            ${fieldError("cron", errors.cron)}`
        : ""
    }
    <label for="zone">Time zone</label>
    <select id="zone" name="zone" data-default-zone="${values.zone ? "" : "browser"}">
      ${timeZones().map((z) => html`<option value="${z}" ${z === zone ? html`selected` : ""}>${z}</option>`)}
    </select>
  </fieldset>`;
}
