/* `tsrun kill [--all] <id> [signal]`. */
import { killContainer } from '../container/lifecycle';
import { parseSignal } from '../container/processes';
import type { CommandContext } from './context';

/** Run `kill`; the signal may be a number or a name with or without SIG. */
export function kill(ctx: CommandContext, id: string, signal: string, all: boolean): number {
  killContainer(ctx.root, id, parseSignal(signal), all);
  return 0;
}
