/*
 * tsrund's logger: one line per record on stderr, `time level msg key=value…`, records below
 * --log-level dropped before formatting.
 */

/** Log levels from most to least verbose. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

/** Fields attached to a record. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** A leveled logger. */
export interface Logger {
  readonly tracing: boolean;
  trace(msg: string, f?: LogFields): void;
  debug(msg: string, f?: LogFields): void;
  info(msg: string, f?: LogFields): void;
  warn(msg: string, f?: LogFields): void;
  error(msg: string, f?: LogFields): void;
}

/** True when `s` names a level. */
export function isLogLevel(s: string): s is LogLevel {
  return s in ORDER;
}

/** A logger writing to `write` (default stderr) at `level` and above. */
export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = ORDER[level];
  const emit = (lvl: LogLevel, msg: string, f?: LogFields): void => {
    if (ORDER[lvl] < min) return;
    let line = `${new Date().toISOString()} ${lvl} ${msg}`;
    if (f !== undefined) {
      for (const [k, v] of Object.entries(f)) {
        if (v === undefined) continue;
        const s = String(v);
        line += ` ${k}=${/[\s"=]/.test(s) || s === '' ? JSON.stringify(s) : s}`;
      }
    }
    write(`${line}\n`);
  };
  return {
    tracing: min === 0,
    trace: (m, f) => emit('trace', m, f),
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
