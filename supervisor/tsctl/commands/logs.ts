/*
 * `tsctl logs [-f] [--tail N] [--since T] [--until T] [-t] CONTAINER`: reads the container's
 * json-file log (label tsctl.log-path, written by its shim) and its rotated files, oldest first
 * (path.N … path.1, path). stdout lines go to our stdout, stderr lines to our stderr. -f keeps
 * reading the live file (reopening it when it was rotated) until the container is no longer
 * running or restarting.
 */
import * as fs from 'node:fs';
import { TsrunError } from '../../../spec/errors';
import { parseArgs } from '../args';
import { usage, withExit, type Ctx } from '../context';
import { parseTimeArg } from '../format';
import { findContainer, getContainer } from '../model';
import { sleep } from '../task';

/** One decoded log line. */
export interface LogEntry {
  log: string;
  stream: string;
  time: string;
}

/** Parse json-file content into entries (bad lines skipped). */
export function parseLog(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const e = JSON.parse(line) as Partial<LogEntry>;
      if (typeof e.log === 'string' && typeof e.time === 'string') out.push({ log: e.log, stream: e.stream ?? 'stdout', time: e.time });
    } catch {
      // a line being written
    }
  }
  return out;
}

/** The files of a log, oldest first. */
export function logFiles(logPath: string): string[] {
  const rotated: string[] = [];
  for (let i = 1; fs.existsSync(`${logPath}.${i}`); i++) rotated.push(`${logPath}.${i}`);
  return [...rotated.reverse(), logPath];
}

/** `tsctl logs` */
export async function logs(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'follow', short: 'f', kind: 'bool', help: 'keep printing new output' },
      { name: 'tail', short: 'n', kind: 'string', help: 'lines from the end (default all)' },
      { name: 'since', kind: 'string', help: 'only after this time (RFC 3339, unix seconds, or 10m)' },
      { name: 'until', kind: 'string', help: 'only before this time' },
      { name: 'timestamps', short: 't', kind: 'bool', help: 'prefix each line with its time' },
      { name: 'details', kind: 'bool', help: 'accepted for docker compatibility' },
    ],
    false,
  );
  if (a.operands.length !== 1) throw usage('"logs" requires exactly 1 argument');
  const c = await findContainer(ctx.client, a.operands[0]!);
  if (c.logPath === undefined) {
    if (c.labels['tsctl.log-driver'] === 'none') throw withExit(new TsrunError('FailedPrecondition', 'configured logging driver does not support reading'), 1);
    if (c.state === 'created') return 0;
    throw withExit(new TsrunError('NotFound', `container ${c.id.slice(0, 12)} has no json-file log`), 1);
  }
  const nowMs = Date.now();
  const since = a.strings.has('since') ? parseTimeArg(a.strings.get('since')!, nowMs) : undefined;
  const until = a.strings.has('until') ? parseTimeArg(a.strings.get('until')!, nowMs) : undefined;
  const tailText = a.strings.get('tail') ?? 'all';
  const tail = tailText === 'all' ? undefined : Number(tailText);
  if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) throw usage(`invalid --tail ${JSON.stringify(tailText)}`);
  const stamps = a.bools.has('timestamps');
  const emit = (e: LogEntry): void => {
    const t = Date.parse(e.time);
    if (since !== undefined && t < since) return;
    if (until !== undefined && t > until) return;
    const text = stamps ? `${fixedNano(e.time)} ${e.log}` : e.log;
    (e.stream === 'stderr' ? ctx.stderr : ctx.stdout).write(text);
  };
  let entries: LogEntry[] = [];
  for (const f of logFiles(c.logPath)) {
    try {
      entries.push(...parseLog(fs.readFileSync(f, 'utf8')));
    } catch {
      // rotated away meanwhile
    }
  }
  entries = entries.filter((e) => (since === undefined || Date.parse(e.time) >= since) && (until === undefined || Date.parse(e.time) <= until));
  if (tail !== undefined) entries = tail === 0 ? [] : entries.slice(-tail);
  for (const e of entries) emit(e);
  if (!a.bools.has('follow')) return 0;
  // follow the live file from its current end
  let ino = -1;
  let pos = 0;
  try {
    const st = fs.statSync(c.logPath);
    ino = st.ino;
    pos = st.size;
  } catch {
    // not written yet
  }
  let partial = '';
  let lastCheck = 0;
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(c.logPath);
    } catch {
      st = undefined;
    }
    if (st !== undefined) {
      if (st.ino !== ino || st.size < pos) {
        ino = st.ino;
        pos = 0;
        partial = '';
      }
      if (st.size > pos) {
        const fd = fs.openSync(c.logPath, 'r');
        try {
          const buf = Buffer.alloc(st.size - pos);
          const n = fs.readSync(fd, buf, 0, buf.length, pos);
          pos += n;
          const text = partial + buf.subarray(0, n).toString('utf8');
          const nl = text.lastIndexOf('\n');
          partial = nl < 0 ? text : text.slice(nl + 1);
          for (const e of parseLog(nl < 0 ? '' : text.slice(0, nl))) emit(e);
        } finally {
          fs.closeSync(fd);
        }
        continue;
      }
    }
    if (Date.now() - lastCheck > 500) {
      lastCheck = Date.now();
      const cur = await getContainer(ctx.client, c.id).catch(() => undefined);
      if (cur === undefined || (cur.state !== 'running' && cur.state !== 'restarting' && cur.state !== 'paused')) {
        await sleep(100);
        // one last read happens in the next turn only if the file grew; done otherwise
        const size = (() => {
          try {
            return fs.statSync(c.logPath).size;
          } catch {
            return pos;
          }
        })();
        if (size <= pos) return 0;
        continue;
      }
    }
    await sleep(100);
  }
}

/**
 * The json-file log stores Go's RFC3339Nano (trailing zeros of the fraction trimmed); `logs -t`
 * prints docker's fixed-width form, always nine digits, so the columns line up.
 */
export function fixedNano(time: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return time;
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0').slice(0, 9)}${m[3]}`;
}
