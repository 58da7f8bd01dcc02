/**
 * A connection URL as it may be printed or logged: user, password and query string (which may carry
 * `password=` or TLS keys) removed. An unparsable value is not echoed at all: it may be a secret pasted
 * into the wrong variable.
 */
export function redactUrl(url: string): string {
  // A cluster URL lists several hosts, which WHATWG URL cannot parse: drop its credentials by hand.
  const cluster = /^(rediss?\+cluster:\/\/)(?:[^@/]*@)?([^/?#]*)/.exec(url);
  if (cluster) return `${cluster[1]}${cluster[2]}`;
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    parsed.search = "";
    return parsed.toString();
  } catch {
    return "(unparsable URL)";
  }
}
