/* Text formatting shared by ps, stats, top and logs: durations, sizes, tables, commands. */
import { TsrunError } from '../../spec/errors';
import type { ContainerInfo } from './model';

/** A duration as docker says it ("Less than a second", "About a minute", "3 hours", "2 weeks"). */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const min = Math.round(s / 60);
  if (min === 1) return 'About a minute';
  if (min < 60) return `${min} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/** The STATUS column: "Up 3 seconds (Paused)", "Exited (1) 2 minutes ago", "Restarting (1) 1 second ago", "Created". */
export function statusText(c: ContainerInfo, nowMs: number): string {
  switch (c.state) {
    case 'running':
      return `Up ${humanDuration(nowMs - (c.startedMs ?? nowMs))}`;
    case 'paused':
      return `Up ${humanDuration(nowMs - (c.startedMs ?? nowMs))} (Paused)`;
    case 'restarting':
      return `Restarting (${c.exitCode}) ${humanDuration(nowMs - (c.finishedMs ?? nowMs))} ago`;
    case 'exited':
      return `Exited (${c.exitCode}) ${humanDuration(nowMs - (c.finishedMs ?? nowMs))} ago`;
    case 'created':
      return 'Created';
    default: {
      const never: never = c.state;
      return never;
    }
  }
}

/** The COMMAND column: the quoted command line, cut to 20 characters with an ellipsis. */
export function commandText(args: readonly string[], full: boolean): string {
  const line = args.map((a) => (a === '' || /[\s'"]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a)).join(' ');
  const cut = !full && line.length > 20 ? `${line.slice(0, 19)}…` : line;
  return `"${cut}"`;
}

/** Columns padded to the widest cell plus three spaces (docker's tabwriter settings). */
export function table(rows: ReadonlyArray<readonly string[]>): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length + 3)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

/** Binary sizes as docker's memory columns ("1.5MiB", "512KiB", "2GiB"). */
export function bytesBinary(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** Decimal sizes as docker's I/O columns ("0B", "1.2kB", "3.4MB"). */
export function bytesDecimal(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** Docker-style time filter value: RFC 3339, unix seconds[.frac], or a duration ago ("10m", "1h30m", "5s"). */
export function parseTimeArg(text: string, nowMs: number): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const dur = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$/.exec(text);
  if (dur !== null && text !== '') {
    const [, h = '0', m = '0', s = '0', msx = '0'] = dur;
    return nowMs - (Number(h) * 3600_000 + Number(m) * 60_000 + Number(s) * 1000 + Number(msx));
  }
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new TsrunError('InvalidArgument', `invalid time ${JSON.stringify(text)}: want RFC 3339, unix seconds or a duration like 10m`);
  return t;
}
