/* `tsrun state`: the OCI state, pretty-printed like runc (no trailing newline). */
import { stateOf } from '../container/lifecycle';
import type { CommandContext } from './context';

/** Run `state`. */
export function state(ctx: CommandContext, id: string): number {
  ctx.out(JSON.stringify(stateOf(ctx.root, id), null, 2));
  return 0;
}
