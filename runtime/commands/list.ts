/* `tsrun list`: runc's table, `-q` ids, or `--format json`. */
import { listContainers } from '../container/lifecycle';
import { tabwriter } from '../cli/format';
import type { CommandContext } from './context';

/** Run `list`. */
export function list(ctx: CommandContext, format: 'table' | 'json', quiet: boolean): number {
  const all = listContainers(ctx.root);
  if (quiet) {
    for (const c of all) ctx.out(`${c.id}\n`);
    return 0;
  }
  if (format === 'json') {
    // runc prints Go's nil slice, "null", when there are no containers; list shows owner "root".
    ctx.out(`${all.length === 0 ? 'null' : JSON.stringify(all.map((c) => ({ ...c, owner: 'root' })))}\n`);
    return 0;
  }
  const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...all.map((c) => [c.id, String(c.pid), c.status, c.bundle, c.created, 'root'])];
  ctx.out(tabwriter(rows));
  return 0;
}
