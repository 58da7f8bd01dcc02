/**
 * The CLI's exit codes, one table (README "Exit codes"). Scripts branch on these: 0 only when there is
 * nothing left for a person to look at.
 */
export const EXIT = {
  /** Done; for `send --wait` and `watch`: the campaign completed and every recipient was accepted. */
  ok: 0,
  /** Refused: a UserError or a bad flag; the message says what to fix. */
  refused: 1,
  /** A bug, or an outage after the command had started (e.g. stored but not queued). */
  internal: 2,
  /** The campaign completed, but some recipients failed or have an unknown outcome. */
  completedWithProblems: 3,
  failed: 4,
  cancelled: 5,
  paused: 6,
  /** Ctrl-C (128 + SIGINT), as shells report it. */
  interrupted: 130,
} as const;

/** How `send --wait` and `watch` end, from the campaign they waited for. */
export function exitCodeForCampaign(report: {
  status: string;
  recipients: { failed: number; unknown: number };
}): number {
  switch (report.status) {
    case "completed":
      return report.recipients.failed + report.recipients.unknown > 0 ? EXIT.completedWithProblems : EXIT.ok;
    case "failed":
      return EXIT.failed;
    case "cancelled":
      return EXIT.cancelled;
    case "paused":
      return EXIT.paused;
    default:
      // Still running or scheduled when the wait ended (its time limit): not done, not clean.
      return EXIT.internal;
  }
}
