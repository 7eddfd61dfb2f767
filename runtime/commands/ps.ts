/*
 * `tsrun ps`: `--format json` prints only the pids (go-runc parses stdout+stderr together, so
 * nothing else may be printed); the table runs the host's ps with the given arguments (default
 * -ef) and keeps the header and the container's rows, as runc does.
 */
import { spawnSync } from 'node:child_process';
import { TsrunError } from '../../spec/errors';
import { containerProcesses } from '../container/lifecycle';
import type { CommandContext } from './context';

/** Keep ps's header and the rows whose PID column is one of `pids`. */
export function filterPsOutput(text: string, pids: readonly number[]): string {
  const lines = text.split('\n');
  const header = lines[0] ?? '';
  const col = header.trim().split(/\s+/).indexOf('PID');
  if (col < 0) throw new TsrunError('InvalidArgument', `ps output has no PID column: ${JSON.stringify(header)}`);
  const want = new Set(pids);
  const rows = lines.slice(1).filter((l) => l.trim() !== '' && want.has(Number(l.trim().split(/\s+/)[col])));
  return [header, ...rows].join('\n') + '\n';
}

/** Run `ps`. */
export function ps(ctx: CommandContext, id: string, format: 'table' | 'json', psArgs: readonly string[]): number {
  const pids = containerProcesses(ctx.root, id);
  if (format === 'json') {
    ctx.out(`${JSON.stringify(pids)}\n`);
    return 0;
  }
  const args = psArgs.length > 0 ? [...psArgs] : ['-ef'];
  const r = spawnSync('ps', args, { encoding: 'utf8' });
  if (r.error) throw new TsrunError('Unavailable', `run ps ${args.join(' ')}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) throw new TsrunError('InvalidArgument', `ps ${args.join(' ')}: exit status ${r.status}: ${r.stderr.trim()}`);
  ctx.out(filterPsOutput(r.stdout, pids));
  return 0;
}
