/**
 * The one type of expected refusal: bad input, an unknown id, a transition not allowed, a provider that
 * refused the account. Front doors turn it into their own words: the CLI prints the message and exits 1
 * (naming its flag for `field`), the HTTP API answers `{error: {code, message, field?, row?}}` with the
 * status of its `kind`. Anything that is not a UserError is a bug or an outage: exit 2 / HTTP 500.
 */
export type UserErrorKind = "invalid" | "not-found" | "conflict" | "unavailable";

export interface UserErrorDetails {
  /** The concept the error is about, in the domain's words (`startAt`, `timezone`, `cron`, `phoneColumn`). */
  field?: string;
  /** A spreadsheet row number (header = row 1) for CSV input. */
  row?: number;
  kind?: UserErrorKind;
}

export class UserError extends Error {
  override name = "UserError";
  readonly field: string | undefined;
  readonly row: number | undefined;
  readonly kind: UserErrorKind;

  constructor(
    /** Stable, machine-readable: `campaign_not_found`, `invalid_transition`, `csv_input`, … */
    readonly code: string,
    message: string,
    details: UserErrorDetails = {},
  ) {
    super(message);
    this.field = details.field;
    this.row = details.row;
    this.kind = details.kind ?? "invalid";
  }
}

export class CampaignNotFoundError extends UserError {
  override name = "CampaignNotFoundError";
  constructor(readonly campaignId: string) {
    super("campaign_not_found", `No campaign with id ${campaignId}`, { kind: "not-found" });
  }
}

/**
 * `smsblast purge` deleted the campaign's recipient detail (recipients, rejects): its counts are kept, its
 * rows are not, so a report, a rejects export or a retry of its failures has nothing to read.
 */
export class CampaignPurgedError extends UserError {
  override name = "CampaignPurgedError";
  constructor(
    readonly campaignId: string,
    purgedAt: Date | null,
    what: string,
  ) {
    super(
      "campaign_purged",
      `campaign ${campaignId}'s recipient detail was purged` +
        (purgedAt ? ` on ${purgedAt.toISOString()}` : " (the purge is under way)") +
        ` (smsblast purge): ${what}; its counts are kept (smsblast status ${campaignId})`,
      { kind: "not-found" },
    );
  }
}

/**
 * PostgreSQL or Redis cannot be used: unreachable, refused the role, or the database is missing. Raised
 * before a command stores anything, so running the command again once the service is back is safe.
 */
export class ServiceUnavailableError extends UserError {
  override name = "ServiceUnavailableError";
  constructor(
    code: string,
    readonly service: "PostgreSQL" | "Redis",
    message: string,
  ) {
    super(code, message, { kind: "unavailable" });
  }
}

export function isUserError(error: unknown): error is UserError {
  return error instanceof UserError;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Campaign ids are UUIDs; anything else is answered as "no such campaign", never as a database error. */
export function assertCampaignId(campaignId: string): void {
  if (!UUID.test(campaignId)) throw new CampaignNotFoundError(campaignId);
}

/** What stopping a streamed launch left behind. */
export interface StoppedReading {
  /** Nothing had been queued: the campaign was deleted, as a planned launch stores nothing on an error. */
  deleted: boolean;
  /** Queued before the stop (they may have been sent; each one's outcome is recorded). */
  batches: number;
  recipients: number;
  /** The figures could not be read (the database is out of reach); the reconciler cancels it later. */
  unknown?: boolean;
}

/** A cancel (or the reconciler) got to the campaign while its list was being read. */
export class StoppedWhileReadingError extends UserError {
  override name = "StoppedWhileReadingError";
  constructor(campaignId: string, status: string | undefined) {
    super(
      "campaign_stopped_while_reading",
      status === undefined
        ? `campaign ${campaignId} was deleted while its list was being read`
        : `campaign ${campaignId} was ${status} while its list was being read`,
      { kind: "conflict" },
    );
  }
}

export class InterruptedWhileReadingError extends UserError {
  override name = "InterruptedWhileReadingError";
  constructor(rowsRead: number) {
    super("interrupted", `interrupted (Ctrl-C) after reading ${rowsRead} rows of the file`);
  }
}

/**
 * A streamed launch that stopped part-way: the cause's words, then what was sent and what was not. A
 * cause that is no UserError (a lost connection) keeps its message out of the user's words; it stays as `cause`.
 */
export class StreamedLaunchStoppedError extends UserError {
  override name = "StreamedLaunchStoppedError";
  constructor(
    override readonly cause: unknown,
    readonly campaignId: string,
    readonly stopped: StoppedReading,
  ) {
    const user = cause instanceof UserError ? cause : undefined;
    super(
      user?.code ?? "launch_stopped",
      `${user ? user.message : "the launch stopped on an internal error (see the log)"}; ` +
        (stopped.unknown
          ? `campaign ${campaignId} had ${stopped.recipients} recipients in ${stopped.batches} requests queued; ` +
            "it could not be cancelled now, `smsblast reconcile` cancels the rest once the database is back"
          : `campaign ${campaignId} was cancelled: ${stopped.recipients} recipients in ${stopped.batches} requests ` +
            "had been queued (they may have been sent, and each outcome is recorded); the rest is not sent"),
      { field: user?.field, row: user?.row, kind: user?.kind ?? "unavailable" },
    );
  }
}
