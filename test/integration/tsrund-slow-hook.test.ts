/**
 * A slow hook in one container's create delays no other container (issue 15): container A's
 * prestart or createRuntime hook signals that it started and then blocks on a FIFO the test holds
 * (bounded: the test releases it in any case). While it blocks, tsrund answers a plain call
 * (`ctr version`, `ctr namespaces ls`), and container B — its own native shim — is created,
 * started, exec'd into, killed, its exit reported and deleted, each step timed. Then the test
 * releases A, which runs to its exit.
 *
 * With the native shim tsrund runs the library's create, hooks included, in its own process
 * (docs/native-shim.md §The library runtime): the hooks are awaited child processes
 * (runHooksAsync). Were a hook run synchronously on tsrund's main thread, its event loop would
 * stay blocked until the FIFO is written, so B's first call would time out (STEP_MS) and the
 * checks below would fail.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { cmdline } from '../helpers/host';
import { startTsrund, tsrundMissing, type CtrResult, type Tsrund } from '../helpers/tsrund';
import { waitFor } from '../helpers/wait';

const why = tsrundMissing();
/** Bound on each of B's ctr calls: far above their cost, far below "stalled until released". */
const STEP_MS = 20_000;
/** How long A's hook stays blocked at most, if the test never got to release it. */
const HOOK_BOUND_S = 120;
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

/** Runs f, returns its result and how long it took. */
function timed<T>(f: () => T): [T, number] {
  const start = process.hrtime.bigint();
  const r = f();
  return [r, Number(process.hrtime.bigint() - start) / 1e6];
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  for (const kind of ['prestart', 'createRuntime'] as const) {
    t.test(`a blocked ${kind} hook in one container delays no other container's requests`, async (t) => {
      const d = await startTsrund(t);
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
      // the FIFO is opened read-write so that the read blocks for a writer's line, never for its open
      const script = `: > ${entered}; read x <> ${fifo}; : > ${left}`;
      spec.hooks = { [kind]: [{ path: '/bin/sh', args: ['sh', '-c', script], timeout: HOOK_BOUND_S }] };
      const specFile = path.join(hookDir, 'a.json');
      fs.writeFileSync(specFile, JSON.stringify(spec));

      let aDone: CtrResult | undefined;
      const aRun = d.ctrAsync(['run', '--rm', '--fifo-dir', d.fifoDir, '--config', specFile, a], { timeoutMs: HOOK_BOUND_S * 1000 }).then((r) => (aDone = r));
      const times: Record<string, number> = {};
      try {
        t.ok(await waitFor(() => fs.existsSync(entered), 30_000), `A's ${kind} hook started`);
        const shimA = shimPidOf(d, a);
        t.match(cmdline(shimA), /^tsrun-shim /, "A's shim process is called tsrun-shim");

        // plain tsrund calls
        const [ver, tVer] = timed(() => d.ctr(['version'], { timeoutMs: STEP_MS }));
        t.equal(ver.status, 0, `ctr version answered while A's hook blocks (${show(ver)})`);
        times['version'] = tVer;
        const [nsls, tNs] = timed(() => d.ctr(['namespaces', 'ls'], { timeoutMs: STEP_MS }));
        t.ok(nsls.status === 0 && nsls.stdout.includes(d.ns), `ctr namespaces ls answered (${show(nsls)})`);
        times['namespaces ls'] = tNs;

        // B: Tasks.Create + Start, exec, kill, exit reported, Delete — while A's hook blocks.
        const b = d.newId('hb');
        const [bRun, tRun] = timed(() => d.ctr(['run', '-d', ...d.runArgs(), b, '/bin/sleep', '1000'], { timeoutMs: STEP_MS }));
        t.equal(bRun.status, 0, `B created and started while A's create is blocked (${show(bRun)})`);
        times['run -d (Create+Start)'] = tRun;
        if (bRun.status === 0) {
          const shimB = shimPidOf(d, b);
          t.not(shimB, shimA, 'B has a shim process of its own');
          t.match(cmdline(shimB), /^tsrun-shim /, "B's shim process is called tsrun-shim");
          const [ex, tEx] = timed(() => d.ctr(['task', 'exec', '--exec-id', 'e1', b, '/bin/echo', 'exec-ok'], { timeoutMs: STEP_MS }));
          t.equal(ex.stdout, 'exec-ok\n', `exec in B (${show(ex)})`);
          times['exec'] = tEx;
          const [kill, tKill] = timed(() => d.ctr(['task', 'kill', '-s', 'SIGKILL', b], { timeoutMs: STEP_MS }));
          t.equal(kill.status, 0, `B killed (${show(kill)})`);
          times['kill'] = tKill;
          t.ok(await waitFor(() => status(d, b) === 'STOPPED', STEP_MS), "B's exit is reported");
          const [del, tDel] = timed(() => d.ctr(['task', 'delete', b], { timeoutMs: STEP_MS }));
          // ctr 1.6's task delete exits 0 and warns with the exit code
          t.ok(del.status === 0 && /exit code 137/.test(del.stderr), `B deleted, its exit status 137 reported (${show(del)})`);
          times['task delete'] = tDel;
          d.ctr(['container', 'rm', b], { timeoutMs: STEP_MS });
        }

        t.notOk(fs.existsSync(left), `A's ${kind} hook was still blocked after B was done`);
        t.equal(aDone, undefined, "A's run had not finished");
        t.comment(`while A's ${kind} hook blocked: ${Object.entries(times).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`);
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
}
