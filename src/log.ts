/**
 * Diagnostic logging: structured lines on stderr, off unless `HECATE_LOG` or `--log-level` sets a
 * level. A line is `TIME LEVEL COMPONENT: MESSAGE k=v ...` with an ISO time. Callers pass only
 * non-secret values (names, hosts, schemes, references, timings, counts); as a second line of
 * defence a field whose name says password, secret, token or key is printed as `[redacted]`.
 *
 * This module imports nothing and costs one comparison per call when logging is off, so it may
 * sit on the cron path (tests/startup_imports_test.ts).
 *
 * @module
 */

/** The levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
/** A level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** A field value. */
export type LogValue = string | number | boolean | null | undefined;

let threshold = -1;
let sink: (line: string) => void = (line) => {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(line));
  } catch {
    // A closed stderr must not fail the operation being logged.
  }
};

/**
 * Parses a level name.
 *
 * @param text The name, any case.
 * @returns The level, or undefined when it is not one.
 */
export function parseLogLevel(text: string): LogLevel | undefined {
  const t = text.trim().toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(t) ? t as LogLevel : undefined;
}

/**
 * Sets the level (undefined: off) and, for tests, where lines go.
 *
 * @param level The most verbose level written, or undefined for none.
 * @param to A sink for whole lines (default: stderr).
 */
export function setLogLevel(level: LogLevel | undefined, to?: (line: string) => void): void {
  threshold = level === undefined ? -1 : LOG_LEVELS.indexOf(level);
  if (to) sink = to;
}

/**
 * Whether a level is written (to skip building costly fields).
 *
 * @param level The level.
 * @returns True when it is.
 */
export function logEnabled(level: LogLevel): boolean {
  return threshold >= 0 && LOG_LEVELS.indexOf(level) <= threshold;
}

const SECRET_NAME = /pass|secret|token|key|credential|otp/i;

function quote(v: string): string {
  // One line per record: control characters escaped, spaces and quotes quoted.
  const escaped = JSON.stringify(v);
  return /^[\w.:/@+-]+$/.test(v) ? v : escaped;
}

/**
 * Writes one line when `level` is enabled.
 *
 * @param level The level.
 * @param component Which part speaks (`vault`, `connect`, `sources`, ...).
 * @param message What happened, plain text.
 * @param fields Non-secret key=value details.
 */
export function log(
  level: LogLevel,
  component: string,
  message: string,
  fields: Record<string, LogValue> = {},
): void {
  if (!logEnabled(level)) return;
  const kv = Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) =>
    `${k}=${SECRET_NAME.test(k) ? "[redacted]" : quote(String(v))}`
  );
  sink(
    [new Date().toISOString(), level.toUpperCase(), `${component}:`, JSON.stringify(message), ...kv]
      .join(
        " ",
      ) + "\n",
  );
}
