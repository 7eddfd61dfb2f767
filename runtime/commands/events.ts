/*
 * `tsrun events`: with --stats one JSON line in runc's shape; without, a stats line every
 * --interval and an {"type":"oom"} line whenever the cgroup's OOM-kill count grows, until the
 * container stops. (OOM is polled with the stats, not pushed by an eventfd.)
 */
import { TsrunError } from '../../spec/errors';
import { oomKillCount } from '../cgroups/oom';
import { statsJson } from '../cgroups/stats';
import { containerStats, stateOf } from '../container/lifecycle';
import { readState } from '../container/state-store';
import { cgroupOfState } from '../container/cgroup';
import type { CommandContext } from './context';

/** Parse a Go-style duration ("5s", "250ms", "1m30s") into milliseconds. */
export function parseDuration(s: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, '\u00b5s': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = s.trim();
  if (rest === '') throw new TsrunError('InvalidArgument', `invalid duration ${JSON.stringify(s)}`);
  while (rest !== '') {
    const m = /^(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/.exec(rest);
    if (!m) throw new TsrunError('InvalidArgument', `invalid duration ${JSON.stringify(s)}: use e.g. 5s, 250ms, 1m`);
    total += parseFloat(m[1]!) * unit[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  if (total <= 0) throw new TsrunError('InvalidArgument', `invalid duration ${JSON.stringify(s)}: must be positive`);
  return total;
}

function statsLine(id: string, data: string): string {
  return `{"type":"stats","id":${JSON.stringify(id)},"data":${data}}\n`;
}

/** OOM kills so far in the container's cgroups (0 without a memory controller). */
function oomKills(paths: Readonly<Record<string, string>>): number {
  return oomKillCount(Object.values(paths)) ?? 0;
}

/** Run `events`. */
export async function events(ctx: CommandContext, id: string, stats: boolean, interval: string): Promise<number> {
  if (stats) {
    ctx.out(statsLine(id, statsJson(containerStats(ctx.root, id))));
    return 0;
  }
  const every = parseDuration(interval);
  const paths = cgroupOfState(readState(ctx.root, id)).paths();
  let ooms = oomKills(paths);
  for (;;) {
    let running: boolean;
    try {
      running = stateOf(ctx.root, id).status !== 'stopped';
    } catch {
      running = false;
    }
    if (!running) return 0;
    const now = oomKills(paths);
    if (now > ooms) ctx.out(`{"type":"oom","id":${JSON.stringify(id)}}\n`);
    ooms = now;
    try {
      ctx.out(statsLine(id, statsJson(containerStats(ctx.root, id))));
    } catch (err) {
      if (err instanceof TsrunError && (err.code === 'NotFound' || err.code === 'FailedPrecondition')) return 0;
      throw err;
    }
    await new Promise((r) => setTimeout(r, every));
  }
}
