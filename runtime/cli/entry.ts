/*
 * The bundle's entry point (bin/tsrun.js). Run by node, it runs the command and sets the exit
 * status. Run by `node --build-snapshot` (the bin/tsrun recipe), it initialises every command
 * module and leaves the run to the snapshot's main function instead, so a CLI started from
 * bin/tsrun.blob finds yargs, zod and the runtime already compiled and initialised.
 */
import * as v8 from 'node:v8';
import { main } from './main';
import { exitNow } from './exit';
import { dropLauncherEnv } from './env';

function run(): void {
  dropLauncherEnv();
  void main(process.argv.slice(2)).then((code) => {
    exitNow(code);
  });
}

/**
 * The command modules and yargs, imported so the snapshot holds them initialised. Only what
 * their top level does is captured: nothing there reads the host, the environment or the clock
 * (yargs's module-level singleton sees the builder's argv, but main() makes its own parser).
 */
async function preloadCommands(): Promise<void> {
  await Promise.all([
    import('yargs'),
    import('../commands/create'),
    import('../commands/run'),
    import('../commands/start'),
    import('../commands/state'),
    import('../commands/kill'),
    import('../commands/delete'),
    import('../commands/list'),
    import('../commands/exec'),
    import('../commands/pause'),
    import('../commands/ps'),
    import('../commands/events'),
    import('../commands/update'),
    import('../commands/features'),
    import('../commands/spec'),
  ]);
}

/**
 * Parse the default config once, so zod's per-schema set-up (done on a schema's first parse) is
 * already in the snapshot when `create` reads a config.json. Pure: validateSpec, which looks at
 * the bundle on disk, is left out.
 */
async function warmSpecParser(): Promise<void> {
  const { defaultSpec, parseSpec } = await import('../../spec');
  const spec = parseSpec(JSON.stringify(defaultSpec()), 'config.json');
  // Build and encode a plan for it too and run the cgroup code (host facts made up, an in-memory
  // fs), so the snapshot holds that code compiled rather than compiling it in every create.
  const host = { cgroupMode: 'legacy', cgroupHierarchies: [], hasKcore: false, capLastCap: 40, hasSystemd: false } as const;
  (await import('../warm')).warmCreateCode(spec, host);
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  void preloadCommands().then(warmSpecParser);
  v8.startupSnapshot.setDeserializeMainFunction(run);
} else {
  run();
}
