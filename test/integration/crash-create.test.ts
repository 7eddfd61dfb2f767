/**
 * Crash consistency of `create`: SIGKILL it at every named stage (TSRUN_TEST_KILL_AT, a test-only
 * hook: see runtime/container/state-store.ts crashPoint) and at random times, then prove that
 * `state`, `list` and a second `create` agree about what is left, that `delete --force` removes
 * all of it (state directory, cgroups in every hierarchy, mounts, processes), and that the id
 * can be created again afterwards.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { parseState } from '../helpers/container';
import { cgroupDirsFor, isAlive, mountsUnder } from '../helpers/host';
import { requires } from '../helpers/requires';
import { combined, describe } from '../helpers/runtime';
import { sleep, waitFor } from '../helpers/wait';

/** The stages create passes, in order ('publish' is before the container directory appears). */
const STAGES = ['publish', 'published', 'cgroup', 'spawn', 'spawned', 'hooks', 'created', 'state'] as const;

/** Processes recorded as the container's: the stored init pid and everything in its cgroups. */
function containerPids(b: Bundle, id: string): number[] {
  const pids = new Set<number>();
  try {
    const s = JSON.parse(fs.readFileSync(path.join(b.rt.root, id, 'state.json'), 'utf8')) as { pid?: number };
    if (typeof s.pid === 'number' && s.pid > 0) pids.add(s.pid);
  } catch {
    // no record (yet)
  }
  for (const dir of cgroupDirsFor(id)) {
    for (const file of ['cgroup.procs', 'tasks']) {
      try {
        for (const l of fs.readFileSync(path.join(dir, file), 'utf8').split('\n')) if (l !== '') pids.add(Number(l));
      } catch {
        // not this kind of hierarchy
      }
    }
  }
  return [...pids];
}

/** Register an id the test creates by hand, so the bundle's teardown checks and removes it too. */
function track(b: Bundle, id: string): void {
  (b.rt.ids as Set<string>).add(id);
}

/** Everything under the runtime root that belongs to `id`, hidden entries included. */
function rootEntries(b: Bundle, id: string): string[] {
  try {
    return fs.readdirSync(b.rt.root).filter((n) => n === id || n.startsWith(`.${id}.`));
  } catch {
    return [];
  }
}

function createKilledAt(b: Bundle, id: string, stage: string): ReturnType<typeof spawnSync> {
  return spawnSync(b.rt.binary, b.rt.argv(['create', id, '--bundle', b.dir], false), {
    env: { ...process.env, TSRUN_TEST_KILL_AT: stage },
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });
}

/**
 * After a killed create: state, list and a second create agree; delete --force leaves nothing;
 * the id can then be created (and deleted) normally.
 */
async function checkLeftover(t: Test, b: Bundle, id: string, what: string): Promise<void> {
  const present = fs.existsSync(path.join(b.rt.root, id));
  const st = b.rt.state(id);
  const listed = b.rt.list(['-q']).stdout.split('\n').includes(id);
  if (present) {
    t.equal(st.code, 0, `${what}: state reports the leftover (${describe(st)})`);
    const status = st.code === 0 ? parseState(st.stdout).status : undefined;
    t.ok(status === 'stopped' || status === 'created', `${what}: it is stopped (half-made) or created (finished): ${String(status)}`);
    t.ok(listed, `${what}: list shows it`);
    const again = b.rt.create(id, b.dir);
    t.not(again.code, 0, `${what}: a second create of the id fails`);
    const wanted = status === 'stopped' ? /already exists: a create of it \(pid \d+\) was killed half-way; `delete --force/ : /already exists/;
    t.match(combined(again), wanted, `${what}: and says what holds the id`);
  } else {
    t.match(combined(st), /does not exist/, `${what}: no container directory, and state agrees`);
    t.notOk(listed, `${what}: list agrees`);
  }
  const pids = containerPids(b, id);
  const del = b.rt.delete(id, { force: true });
  t.equal(del.code, 0, `${what}: delete --force exits 0 (${describe(del)})`);
  t.same(rootEntries(b, id), [], `${what}: no state directory left`);
  t.same(cgroupDirsFor(id), [], `${what}: no cgroup directory left in any hierarchy`);
  t.same(mountsUnder(b.sandbox), [], `${what}: no mount left`);
  const alive = (): number[] => pids.filter((p) => isAlive(p));
  t.ok(await waitFor(() => alive().length === 0, 5000), `${what}: no process of the container left (${alive().join(' ')})`);
  const fresh = b.rt.create(id, b.dir);
  t.equal(fresh.code, 0, `${what}: the id can be created again (${describe(fresh)})`);
  t.equal(b.rt.delete(id, { force: true }).code, 0, `${what}: and deleted`);
  t.same(rootEntries(b, id), [], `${what}: clean at the end`);
}

/** A config whose create reaches every stage: a createRuntime hook makes 'hooks' reachable. */
function crashBundle(t: Test, ownMountNs: boolean): Bundle {
  return makeBundle(t, {
    args: ['sleep', '100'],
    patch: (s) => {
      s.hooks = { createRuntime: [{ path: '/bin/true' }] };
      if (!ownMountNs) {
        s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'mount');
        delete s.linux.maskedPaths;
        delete s.linux.readonlyPaths;
        s.root.readonly = false;
      }
    },
  });
}

for (const ownMountNs of [true, false]) {
  const kind = ownMountNs ? 'with a mount namespace' : 'without a mount namespace (mounts in ours)';
  t.test(`create killed at each stage, ${kind}`, async (t) => {
    // TSRUN_TEST_KILL_AT is a tsrun test hook.
    if (!requires(t, 'root', 'busybox', 'not-runc')) return;
    const b = crashBundle(t, ownMountNs);
    for (const stage of STAGES) {
      const id = b.newId();
      track(b, id);
      const r = createKilledAt(b, id, stage);
      t.equal(r.signal, 'SIGKILL', `${stage}: create was killed there (status ${String(r.status)}: ${String(r.stderr).trim()})`);
      if (!ownMountNs && (stage === 'hooks' || stage === 'created')) {
        t.ok(mountsUnder(b.rootfs).length > 0, `${stage}: the container's mounts are in our namespace before the cleanup`);
      }
      await checkLeftover(t, b, id, stage);
    }
  });
}

t.test('create killed at random times', async (t) => {
  // runc leaves half-made containers that its delete cannot clean, so this is tsrun's alone.
  if (!requires(t, 'root', 'busybox', 'not-runc')) return;
  const b = crashBundle(t, true);
  const tries = 12;
  let killed = 0;
  for (let i = 0; i < tries; i++) {
    const id = b.newId();
    track(b, id);
    const delay = 5 + Math.floor(Math.random() * 295);
    const child = spawn(b.rt.binary, b.rt.argv(['create', id, '--bundle', b.dir], false), { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await Promise.race([sleep(delay), exited]);
    // Only our own child, by its pid, and only while it runs.
    if (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')) killed++;
    await exited;
    await checkLeftover(t, b, id, `try ${i + 1} (kill after ${delay} ms)`);
  }
  t.comment(`${killed} of ${tries} creates were killed before they finished`);
});
