/*
 * tsctl's entry point (bin/tsctl.js). Run by node, it runs the command. Run by
 * `node --build-snapshot` (the bin/tsctl recipe in the Makefile), it warms tsctl up and leaves the
 * run to the snapshot's main function, so a tsctl started from bin/tsctl.blob finds every command
 * module, tsctl's gRPC client (h2-client.ts) and the protobuf registry already compiled and
 * initialised, as bin/tsrun does (runtime/cli/startup/README.md), with the encoders and decoders
 * of the messages the hot commands send and receive generated (./hot.ts; the rest are generated
 * on first use: every start pays for what the snapshot holds, docs/tsctl.md).
 *
 *   bin/tsctl (launcher.sh) ── snapshot usable ──▶ node --snapshot-blob bin/tsctl.blob bin/tsctl.js
 *                           └─ otherwise ─────────▶ node bin/tsctl.js
 *
 * The warm-up reads nothing of the host, the environment or the clock: what module top levels
 * and warmClient do is all the snapshot holds.
 */
import * as v8 from 'node:v8';
import { LAUNCHER_GLIBC_TUNABLES } from '../../../runtime/cli/startup/env';
import { warmClient } from '../../client';
import { warmH2Client } from '../h2-client';
import { runCli } from '../main';
import { setRunningScript } from '../seccomp';
import { HOT_METHODS } from './hot';

function run(): void {
  // the launcher's malloc tunables are for node's own start-up, not for what tsctl starts
  if (process.env['GLIBC_TUNABLES'] === LAUNCHER_GLIBC_TUNABLES) delete process.env['GLIBC_TUNABLES'];
  // the snapshot's __filename is where it was built; the profile is found beside where we run
  if (process.argv[1] !== undefined) setRunningScript(process.argv[1]);
  runCli(process.argv.slice(2));
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  warmClient(HOT_METHODS);
  warmH2Client();
  v8.startupSnapshot.setDeserializeMainFunction(run);
} else {
  run();
}
