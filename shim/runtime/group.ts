/*
 * The runtime library for a container of a shim group (docs/shim-protocol.md §Warm shims and
 * groups). The library's create, start, exec and delete run synchronously in the calling thread:
 * they wait on the container's sync socket and run the OCI hooks with spawnSync, so one slow hook
 * or create would stop the event loop every container of the group is served from. Here those four
 * go through the runtime library's own CLI (bin/tsrun, the same code, as binary.ts runs runc), so
 * the shim waits for them asynchronously; the calls that neither run hooks nor wait on the
 * container's processes (kill, pause, resume, ps, stats, update) stay in-process. Both act on the
 * same --root, whose state the CLI and the library share.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { binaryRuntime } from './binary';
import { libraryRuntime } from './library';
import type { Runtime, RuntimeParams } from './types';

/** bin/tsrun beside this shim (bin/tsrun-shim, or shim/main.ts run from the sources); $TSRUN_BINARY first. */
export function tsrunBinary(): string {
  const env = process.env['TSRUN_BINARY'];
  const main = process.argv[1];
  const candidates = [
    ...(env ? [path.resolve(env)] : []),
    ...(main ? [path.join(path.dirname(path.resolve(main)), 'tsrun'), path.resolve(path.dirname(main), '..', 'bin', 'tsrun')] : []),
    path.resolve(__dirname, 'tsrun'),
    path.resolve(__dirname, '..', '..', 'bin', 'tsrun'),
  ];
  const found = candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
  if (!found) throw new TsrunError('NotFound', `a grouped container runs its runtime calls through bin/tsrun, not found (looked at ${candidates.join(', ')}); set TSRUN_BINARY`);
  return found;
}

/** The Runtime of a grouped container whose runtime is the library. */
export function groupRuntime(p: RuntimeParams): Runtime {
  const lib = libraryRuntime(p);
  // systemdCgroup false, as libraryRuntime passes it
  const bin = binaryRuntime({ ...p, path: tsrunBinary(), systemdCgroup: false });
  return {
    create: (stdio) => bin.create(stdio),
    start: () => bin.start(),
    exec: (execId, processJson, stdio) => bin.exec(execId, processJson, stdio),
    async delete(force) {
      try {
        await bin.delete(force);
      } catch (err) {
        // as libraryRuntime: a forced delete of a container the runtime does not know is done
        if (force && err instanceof TsrunError && err.code === 'NotFound') return;
        throw err;
      }
    },
    kill: (signal, all) => lib.kill(signal, all),
    pause: () => lib.pause(),
    resume: () => lib.resume(),
    ps: () => lib.ps(),
    stats: () => lib.stats(),
    update: (resourcesJson) => lib.update(resourcesJson),
  };
}
