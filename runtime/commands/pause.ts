/* `tsrun pause` and `tsrun resume`: freeze and thaw the container's cgroup. */
import { pauseContainer, resumeContainer } from '../container/lifecycle';
import type { CommandContext } from './context';

/** Run `pause`. */
export function pause(ctx: CommandContext, id: string): number {
  pauseContainer(ctx.root, id);
  return 0;
}

/** Run `resume`. */
export function resume(ctx: CommandContext, id: string): number {
  resumeContainer(ctx.root, id);
  return 0;
}
