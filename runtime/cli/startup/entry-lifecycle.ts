/*
 * The lifecycle bundle's entry point (bin/tsrun-lifecycle.js and its snapshot): the verbs
 * verbs.ts marks `fast: 'lifecycle'` (start, state, kill, delete: what engines call on every
 * container), and nothing else. Node pays for a startup snapshot by its size, and this one holds
 * no yargs, zod, spec parser or plan builder (README.md).
 *
 * The launcher picks this bundle when the command line's verb is one of them. Any command line
 * the fast path does not take (--help, a usage error, a guess the launcher got wrong) goes to the
 * full CLI, bin/tsrun.js beside this file, loaded in this process: slower, same result.
 */
import * as v8 from 'node:v8';
import { normalizeArgv } from '../argv';
import { parseFast } from './fast-args';
import { exitNow } from './exit';
import { dropLauncherEnv } from './env';
import { LIFECYCLE_COMMANDS, runFast } from './fast-run';

function run(): void {
  const f = parseFast(normalizeArgv(process.argv.slice(2)));
  const command = f === undefined ? undefined : LIFECYCLE_COMMANDS[f.verb];
  if (f === undefined || command === undefined) {
    // The full CLI runs its command line from process.argv when it is loaded, and takes the
    // launcher's variables out of the env itself (it needs TSRUN_CALLER_FDS for --preserve-fds).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('node:module') as typeof import('node:module')).createRequire(process.argv[1] ?? __filename)('./tsrun.js');
    return;
  }
  dropLauncherEnv();
  const out = { stdout: (s: string): void => void process.stdout.write(s), stderr: (s: string): void => void process.stderr.write(s) };
  void runFast(f, command, out).then((code) => {
    exitNow(code);
  });
}

/** The snapshot's warm-up (README.md): its command modules initialised, and the cgroup code kill and delete use run. */
async function warmLifecycle(): Promise<void> {
  await Promise.all([import('../../commands/start'), import('../../commands/state'), import('../../commands/kill'), import('../../commands/delete')]);
  (await import('../../cgroups/warm')).warmCgroupTeardown();
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  void warmLifecycle();
  v8.startupSnapshot.setDeserializeMainFunction(run);
} else {
  run();
}
