/*
 * `tsctl diff CONTAINER`: docker's list of what the container changed in its file system,
 * `A /path` (added), `C /path` (changed), `D /path` (deleted), one a line, sorted by path.
 * Read from the container's overlay upper dir against its image layers (supervisor/diff/changes.ts),
 * running or stopped; a running container is paused while its layer is walked (container-fs.ts).
 */
import { TsrunError } from '../../../spec/errors';
import { overlayChanges } from '../../diff/changes';
import { parseArgs } from '../args';
import { usage, type Ctx } from '../context';
import { containerLayer, overlayDirs, withFrozen } from '../container-fs';
import { findContainer } from '../model';

/** `tsctl diff` */
export async function diff(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [], false);
  if (a.operands.length !== 1) throw usage('"diff" requires exactly 1 argument: CONTAINER');
  const c = await findContainer(ctx.client, a.operands[0]!);
  const layer = await containerLayer(ctx, c);
  if (layer.kind === 'dir') throw new TsrunError('FailedPrecondition', `container ${c.name} runs on the directory ${layer.root}, not an image layer: it has no changes to list`);
  const dirs = overlayDirs(layer.mounts);
  if (dirs === undefined) throw new TsrunError('FailedPrecondition', `container ${c.name}: snapshot ${layer.key} of ${layer.snapshotter} is not an overlay or bind mount`);
  const changes = await withFrozen(ctx, c, () => Promise.resolve(overlayChanges(dirs.upper, dirs.lowers)));
  for (const ch of changes) ctx.out(`${ch.kind} ${ch.path}`);
  return 0;
}
