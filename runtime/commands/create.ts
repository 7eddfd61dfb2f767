/* `tsrun create`: set the container up; init waits on the exec fifo for `start`. */
import { createContainer, type CreateOptions } from '../container/create';
import type { CommandContext } from './context';

/** Flags of create (and run): the create options that do not come from the global flags. */
export type CreateArgs = Omit<CreateOptions, 'root' | 'systemdCgroup' | 'debug'>;

/** Run `create`; returns the exit code. */
export function create(ctx: CommandContext, a: CreateArgs): number {
  createContainer({ root: ctx.root, systemdCgroup: ctx.systemdCgroup, debug: (m) => ctx.log.debug(m), warn: (m) => ctx.log.warn(m), ...a });
  return 0;
}
