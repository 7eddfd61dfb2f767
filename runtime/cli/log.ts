/*
 * --log / --log-format / --debug. Errors go to stderr as plain text and, with --log, as one line
 * in the log file: {"level":"error","msg":…,"time":RFC3339} for json, logrus-style text otherwise
 * (containerd reads the last error line; podman parses the whole file as one object, so a
 * successful call writes nothing at level error).
 */
import * as fs from 'node:fs';

/** Log levels we write. */
export type Level = 'error' | 'warning' | 'info' | 'debug';

/** Where messages go. */
export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

/** Logger options from the global flags. */
export interface LogOptions {
  readonly file?: string | undefined;
  readonly format: 'text' | 'json';
  readonly debug: boolean;
}

/** RFC 3339 in UTC without fractional seconds, the way runc's logrus prints it. */
export function logTime(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Format one log line (no trailing newline). */
export function formatLine(format: 'text' | 'json', level: Level, msg: string, now: Date): string {
  if (format === 'json') return JSON.stringify({ level, msg, time: logTime(now) });
  return `time="${logTime(now)}" level=${level} msg=${JSON.stringify(msg)}`;
}

/** A logger writing to stderr and the --log file. */
export function createLogger(opts: LogOptions, stderr: (s: string) => void): Logger {
  const append = (level: Level, msg: string): void => {
    if (!opts.file) return;
    try {
      fs.appendFileSync(opts.file, `${formatLine(opts.format, level, msg, new Date())}\n`, { mode: 0o600 });
    } catch (err) {
      stderr(`tsrun: write log ${opts.file}: ${(err as Error).message}\n`);
    }
  };
  return {
    error(msg) {
      append('error', msg);
      stderr(`${msg}\n`);
    },
    warn(msg) {
      append('warning', msg);
      stderr(`tsrun: warning: ${msg}\n`);
    },
    debug(msg) {
      if (!opts.debug) return;
      append('debug', msg);
      if (!opts.file) stderr(`tsrun: debug: ${msg}\n`);
    },
  };
}
