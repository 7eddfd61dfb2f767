/* `tsrun delete [--force] <id>`. */
import { TsrunError } from '../../spec/errors';
import { deleteContainer } from '../container/lifecycle';
import type { CommandContext } from './context';

/** Run `delete`; with --force a missing container is not an error (engines always send it twice). */
export async function del(ctx: CommandContext, id: string, force: boolean): Promise<number> {
  try {
    for (const w of await deleteContainer(ctx.root, id, force)) ctx.log.warn(w);
  } catch (err) {
    if (force && err instanceof TsrunError && err.code === 'NotFound') return 0;
    throw err;
  }
  return 0;
}
