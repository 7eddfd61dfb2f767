/**
 * A slow create in a shim group stalls nobody else of the group: container A's createRuntime hook
 * blocks on a FIFO the test holds; meanwhile container B of the same group (same shim process) is
 * created, started, exec'd into, killed and deleted, and container C of the group runs to its exit
 * status — all while A's hook is still blocked. Then the test releases A, which runs normally.
 * (docs/shim-protocol.md §Warm shims and groups: a group shim runs the blocking runtime calls
 * through the runtime binary, so its event loop stays free.)
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { startTsrund, tsrundMissing, type CtrResult, type Tsrund } from '../helpers/tsrund';
import { waitFor } from '../helpers/wait';

const why = tsrundMissing();
const GROUP = 'io.tsrun.shim-group';
/** Bound on each of B's and C's ctr calls: far above their cost, far below "stalled until released". */
const STEP_MS = 20_000;
const show = (r: CtrResult): string => `status ${r.status} signal ${r.signal} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;

function shimPidOf(d: Tsrund, id: string): number {
  return Number(fs.readFileSync(path.join(d.shimRoot, d.ns, id, 'shim.pid'), 'utf8').trim());
}

function status(d: Tsrund, id: string): string | undefined {
  const line = d.ctr(['task', 'ls'], { timeoutMs: STEP_MS }).stdout.split('\n').find((l) => l.trim().split(/\s+/)[0] === id);
  return line?.trim().split(/\s+/)[2];
}

/** Write to the FIFO A's hook reads; false when nobody reads it (the hook is not waiting there). */
function release(fifo: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return false; // ENXIO: no reader
  }
  try {
    fs.writeSync(fd, 'go\n');
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('a blocked createRuntime hook in a group shim stalls no other container of the group', async (t) => {
    const d = await startTsrund(t);
    const group = `stall${process.pid}`;
    const hookDir = fs.mkdtempSync(path.join(d.sandbox, 'hook-'));
    const fifo = path.join(hookDir, 'fifo');
    const entered = path.join(hookDir, 'entered');
    const left = path.join(hookDir, 'left');
    const mk = d.ctr(['oci', 'spec']);
    t.equal(mk.status, 0, `ctr oci spec (status ${mk.status} stderr ${JSON.stringify(mk.stderr)})`);
    execFileSync('mkfifo', [fifo]);

    const a = d.newId('ha');
    // ctr's default spec with our rootfs, command, cgroup (where the sandbox's teardown looks) and hook
    const spec = JSON.parse(mk.stdout) as { root?: unknown; process: { terminal?: boolean; args?: string[] }; linux: { cgroupsPath?: string }; hooks?: unknown };
    spec.root = { path: d.rootfs, readonly: false };
    spec.process.terminal = false;
    spec.process.args = ['/bin/echo', 'a-ran'];
    spec.linux.cgroupsPath = `/${d.ns}/${a}`;
    spec.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `: > ${entered}; read x < ${fifo}; : > ${left}`] }] };
    const specFile = path.join(hookDir, 'a.json');
    fs.writeFileSync(specFile, JSON.stringify(spec));

    let aDone: CtrResult | undefined;
    const aRun = d.ctrAsync(['run', '--rm', '--fifo-dir', d.fifoDir, '--label', `${GROUP}=${group}`, '--config', specFile, a], { timeoutMs: 120_000 }).then((r) => (aDone = r));
    try {
      t.ok(await waitFor(() => fs.existsSync(entered), 30_000), "A's createRuntime hook started");
      const shim = shimPidOf(d, a);

      // B: create + start, exec, kill, exit reported, delete — in A's shim, while A's hook blocks.
      const b = d.newId('hb');
      const bRun = d.ctr(['run', '-d', '--label', `${GROUP}=${group}`, ...d.runArgs(), b, '/bin/sleep', '1000'], { timeoutMs: STEP_MS });
      t.equal(bRun.status, 0, `B created and started while A's create is blocked (${show(bRun)})`);
      if (bRun.status === 0) {
        t.equal(shimPidOf(d, b), shim, 'B is served by the same shim process as A');
        const ex = d.ctr(['task', 'exec', '--exec-id', 'e1', b, '/bin/echo', 'exec-ok'], { timeoutMs: STEP_MS });
        t.equal(ex.stdout, 'exec-ok\n', `exec in B (${show(ex)})`);
        t.equal(d.ctr(['task', 'kill', '-s', 'SIGKILL', b], { timeoutMs: STEP_MS }).status, 0, 'B killed');
        t.ok(await waitFor(() => status(d, b) === 'STOPPED', STEP_MS), "B's exit is reported");
        const del = d.ctr(['task', 'delete', b], { timeoutMs: STEP_MS });
        // ctr 1.6's task delete exits 0 and warns with the exit code
        t.ok(del.status === 0 && /exit code 137/.test(del.stderr), `B deleted, its exit status 137 reported (${show(del)})`);
        d.ctr(['container', 'rm', b], { timeoutMs: STEP_MS });
      }

      // C: a whole run with output and exit status through the group's shim.
      const c = d.ctr(['run', '--rm', '--label', `${GROUP}=${group}`, ...d.runArgs(), d.newId('hc'), '/bin/sh', '-c', 'echo c-ran; exit 5'], { timeoutMs: STEP_MS });
      t.equal(c.status, 5, `C's exit status while A's create is blocked (${show(c)})`);
      t.equal(c.stdout, 'c-ran\n', "C's output");
      t.same(d.shimPids(), [shim], 'one shim served the whole group (C was not given a second one)');

      t.notOk(fs.existsSync(left), "A's hook was still blocked after B and C were done");
      t.equal(aDone, undefined, "A's run had not finished");
      t.ok(fs.readdirSync(path.join(d.shimRoot, d.ns)).includes(a), "A's shim directory is still there");
      t.equal(shimPidOf(d, a), shim, 'and A still in the same shim');
    } finally {
      // Release A whatever happened above (bounded: the hook may not have reached the read yet).
      await waitFor(() => release(fifo), 10_000);
    }
    const ar = await aRun;
    t.equal(ar.status, 0, `A ran after its hook was released (${show(ar)})`);
    t.equal(ar.stdout, 'a-ran\n', "A's output");
    t.ok(fs.existsSync(left), "A's hook finished");
  });
}
