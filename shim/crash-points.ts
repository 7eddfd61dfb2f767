/*
 * Test-only crash points: with TSRUND_TEST_CRASH_AT=<point>[,<point>…] in its environment, tsrund
 * (or a shim: shims inherit tsrund's environment) kills itself with SIGKILL when it reaches a named
 * point, so a test can prove that a kill -9 exactly there leaves nothing the next start or a
 * delete cannot clean (test/integration/tsrund-crash-create.test.ts). Unset, this is one
 * environment lookup.
 *
 * Points of Tasks.Create, in order: create:before-shim (tsrund, nothing made yet), create:shim-dir
 * (the shim directory is written, no shim serves it), shim:create (the shim got create, no
 * container yet), shim:created (the container exists, create not answered), create:shim-started
 * and create:container-created (tsrund, before and after the shim's create), create:recorded
 * (tsrund recorded the task, before answering). A restart policy's restart: restart:task-deleted
 * (the exited task is deleted, the new one not made yet).
 */
import * as fs from 'node:fs';

const VAR = 'TSRUND_TEST_CRASH_AT';

/** Kill this process with SIGKILL if the environment names `point`. */
export function crashPoint(point: string): void {
  const at = process.env[VAR];
  if (at === undefined || !at.split(',').includes(point)) return;
  try {
    fs.writeSync(2, `${VAR}: crashing at ${point}\n`);
  } catch {
    // stderr may be /dev/null or closed: the kill is what counts
  }
  process.kill(process.pid, 'SIGKILL');
}
