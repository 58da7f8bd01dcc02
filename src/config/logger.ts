import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Every log line goes through these redaction paths, so a secret passed by mistake in a bound object never
 * reaches the output. The provider client never logs headers in the first place; this is the second wall.
 */
const REDACT_PATHS = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "apiKey",
  "apiSecret",
  "*.apiKey",
  "*.apiSecret",
  "engagelab.credentials.*.apiKey",
  "engagelab.credentials.*.apiSecret",
  "*.engagelab.credentials.*.apiKey",
  "*.engagelab.credentials.*.apiSecret",
  "signingSecret",
  "signingKey",
  "*.signingSecret",
  "*.signingKey",
  "webhooks.signingSecret",
  "*.webhooks.signingSecret",
  // Holds no secret in any printable form (toJSON gives its key id only); censored all the same.
  "phoneHasher",
  "*.phoneHasher",
  "privacy.phoneHasher",
  "*.privacy.phoneHasher",
];

/**
 * While a progress bar is drawn on the terminal, log lines go through this, so they print above the bar
 * instead of through it (src/cli/progress.ts sets it). Undefined: lines go straight to stderr.
 */
let terminalLineSink: ((line: string) => void) | undefined;
export function setTerminalLineSink(sink: ((line: string) => void) | undefined): void {
  terminalLineSink = sink;
}

export function createLogger(level: string, destination: NodeJS.WritableStream | number = 2): Logger {
  // stderr by default: stdout belongs to command output (campaign ids, JSON status).
  const stream =
    destination === 2 && process.stderr.isTTY
      ? // A terminal may be showing a progress bar: write each line through the sink when one is set.
        { write: (line: string) => (terminalLineSink ? terminalLineSink(line) : process.stderr.write(line)) }
      : typeof destination === "number"
        ? pino.destination({ fd: destination, sync: false })
        : destination;
  return pino({ level, redact: { paths: REDACT_PATHS, censor: "[redacted]" }, base: { pid: process.pid } }, stream);
}
