/*
 * `tsctl export [-o FILE] CONTAINER`: a tar of the container's whole file system, as docker's
 * export (its merged root: image layers plus its own, without the volumes and mounts of a run).
 * Streamed: the tree is walked by the layer code (writeDiff of the root against nothing) and each
 * file read only as fast as the output takes it. With -o the tar goes to FILE.partial, renamed when
 * complete (removed on failure); without it to stdout, never a terminal. A running container is
 * paused meanwhile (container-fs.ts); a stopped one's snapshot is mounted for the time of it.
 */
import { once } from 'node:events';
import * as fs from 'node:fs';
import { wrapSystemError } from '../../../spec/errors';
import { writeDiff } from '../../diff/write';
import { parseArgs } from '../args';
import { usage, type Ctx } from '../context';
import { withContainerRoot } from '../container-fs';
import { findContainer } from '../model';

/** `tsctl export` */
export async function exportContainer(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [{ name: 'output', short: 'o', kind: 'string', help: 'write to FILE instead of stdout' }], false);
  if (a.operands.length !== 1) throw usage('"export" requires exactly 1 argument: CONTAINER');
  const file = a.strings.get('output');
  if (file === undefined && ctx.stdout.isTTY) throw usage('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const c = await findContainer(ctx.client, a.operands[0]!);
  const tmp = file !== undefined ? `${file}.partial` : undefined;
  await withContainerRoot(ctx, c, async (root) => {
    const out: NodeJS.WritableStream = tmp !== undefined ? fs.createWriteStream(tmp, { mode: 0o600 }) : ctx.stdout;
    try {
      for await (const chunk of writeDiff({ kind: 'tree', lower: null, upper: root })) if (!out.write(chunk as Buffer)) await once(out, 'drain');
      if (tmp !== undefined && file !== undefined) {
        await new Promise<void>((resolve, reject) => (out as fs.WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));
        fs.renameSync(tmp, file);
      }
    } catch (e) {
      if (tmp !== undefined) {
        (out as fs.WriteStream).destroy();
        fs.rmSync(tmp, { force: true });
      }
      throw wrapSystemError(`export ${c.name}`, e);
    }
  });
  return 0;
}
