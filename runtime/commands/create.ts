/* `tsrun create`: set the container up; init waits on the exec fifo for `start`. */
import { createContainer } from '../container/create';
import type { CommandContext } from './context';

/** Flags of create (and run). */
export interface CreateArgs {
  readonly id: string;
  readonly bundle: string;
  readonly pidFile?: string | undefined;
  readonly noPivot: boolean;
  readonly noNewKeyring: boolean;
  readonly preserveFds: number;
}

/** Run `create`; returns the exit code. */
export function create(ctx: CommandContext, a: CreateArgs): number {
  createContainer({ root: ctx.root, systemdCgroup: ctx.systemdCgroup, debug: (m) => ctx.log.debug(m), ...a });
  return 0;
}
