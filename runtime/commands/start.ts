/* `tsrun start`: release a created container's init. */
import { startContainer } from '../container/lifecycle';
import type { CommandContext } from './context';

/** Run `start`; poststart hook failures are warnings. */
export function start(ctx: CommandContext, id: string): number {
  for (const w of startContainer(ctx.root, id)) ctx.log.warn(w);
  return 0;
}
