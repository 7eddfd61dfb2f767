/*
 * The full CLI's entry point (bin/tsrun.js). Run by node, it runs the command and sets the exit
 * status. Run by `node --build-snapshot` (the bin/tsrun recipe), it warms the CLI up (warm.ts)
 * and leaves the run to the snapshot's main function instead, so a CLI started from
 * bin/tsrun.blob finds yargs, zod and the runtime already compiled and initialised.
 */
import * as v8 from 'node:v8';
import { main } from '../main';
import { exitNow } from './exit';
import { dropLauncherEnv } from './env';

function run(): void {
  dropLauncherEnv();
  void main(process.argv.slice(2)).then((code) => {
    exitNow(code);
  });
}

/**
 * The snapshot's warm-up (README.md): every command module and yargs initialised, a default
 * config parsed (zod sets a schema up on its first parse), and a create's plan and cgroup code
 * run. Only what module top levels and these calls do is captured: nothing here reads the host,
 * the environment or the clock (yargs's module-level singleton sees the builder's argv, but
 * main() makes its own parser).
 */
async function warmFullCli(): Promise<void> {
  await Promise.all([
    import('yargs'),
    import('../../commands/create'),
    import('../../commands/run'),
    import('../../commands/start'),
    import('../../commands/state'),
    import('../../commands/kill'),
    import('../../commands/delete'),
    import('../../commands/list'),
    import('../../commands/exec'),
    import('../../commands/pause'),
    import('../../commands/ps'),
    import('../../commands/events'),
    import('../../commands/update'),
    import('../../commands/features'),
    import('../../commands/spec'),
  ]);
  const { defaultSpec, parseSpec } = await import('../../../spec');
  const spec = parseSpec(JSON.stringify(defaultSpec()), 'config.json');
  // Host facts made up (validateSpec, which looks at the bundle on disk, is left out).
  const host = { cgroupMode: 'legacy', cgroupHierarchies: [], hasKcore: false, capLastCap: 40, hasSystemd: false } as const;
  (await import('./warm')).warmCreateCode(spec, host);
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  void warmFullCli();
  v8.startupSnapshot.setDeserializeMainFunction(run);
} else {
  run();
}
