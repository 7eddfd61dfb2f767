/**
 * The six hook kinds: when they run relative to the CLI calls, in which mount/uts
 * namespace, what they receive on stdin, and what a failing or hanging hook does.
 *
 * Every hook and the container process append one line to a single log file:
 *   kind|mnt-ns|uts-ns|state-json
 * Host-namespace hooks are host /bin/sh scripts writing to <sandbox>/hl/hooks.log. The
 * createContainer hook also runs a host path: it runs in the container's mount namespace
 * but before pivot_root, so host paths still resolve. startContainer runs after pivot_root,
 * so its script lives in the rootfs (busybox sh) and writes through a bind mount of the same
 * directory at /hl. The test appends markers (create-returned, …) to the same file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { readState, waitForStatus } from '../helpers/container';
import { allPids, cmdline, nsId } from '../helpers/host';
import type { HookKind, OciHook } from '../helpers/oci';
import { requires } from '../helpers/requires';
import { describe, runtimeName } from '../helpers/runtime';
import { waitFor } from '../helpers/wait';

interface Entry {
  kind: string;
  mnt: string;
  uts: string;
  state: unknown;
}

interface HookRig {
  b: Bundle;
  log: string;
  /** Host script: hook.sh <kind> [exit-status]. */
  hostHook: (kind: HookKind, exitStatus?: number) => OciHook;
  mark: (what: string) => void;
  entries: () => Entry[];
}

function rig(t: Parameters<typeof makeBundle>[0]): HookRig {
  const b = makeBundle(t);
  const hl = b.hostDir('hl');
  const log = path.join(hl, 'hooks.log');
  const hostScript = path.join(b.hostDir('hooks'), 'hook.sh');
  const body = (logPath: string): string =>
    [
      '#!/bin/sh',
      'state=$(cat | tr -d "\\n")',
      `echo "$1|$(readlink /proc/self/ns/mnt)|$(readlink /proc/self/ns/uts)|$state" >> ${logPath}`,
      'exit ${2:-0}',
      '',
    ].join('\n');
  fs.writeFileSync(hostScript, body(log), { mode: 0o755 });
  fs.writeFileSync(path.join(b.rootfs, 'hook.sh'), body('/hl/hooks.log'), { mode: 0o755 });
  b.writeSpec((s) => {
    s.mounts.push({ destination: '/hl', type: 'bind', source: hl, options: ['rbind', 'rw'] });
    s.process.args = ['sh', '-c', 'echo "process|$(readlink /proc/self/ns/mnt)|$(readlink /proc/self/ns/uts)|{}" >> /hl/hooks.log'];
  });
  return {
    b,
    log,
    hostHook: (kind, exitStatus) => ({ path: hostScript, args: ['hook.sh', kind, ...(exitStatus !== undefined ? [String(exitStatus)] : [])] }),
    mark: (what) => fs.appendFileSync(log, `${what}|||{}\n`),
    entries: () => {
      let text = '';
      try {
        text = fs.readFileSync(log, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [kind = '', mnt = '', uts = '', ...rest] = l.split('|');
          let state: unknown;
          try {
            state = JSON.parse(rest.join('|')) as unknown;
          } catch {
            state = rest.join('|');
          }
          return { kind, mnt, uts, state };
        });
    },
  };
}

const field = (v: unknown, k: string): unknown => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined);

t.test('order, namespaces and stdin of all six hooks', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const r = rig(t);
  const { b } = r;
  b.writeSpec((s) => {
    s.hooks = {
      prestart: [r.hostHook('prestart')],
      createRuntime: [r.hostHook('createRuntime')],
      createContainer: [r.hostHook('createContainer')],
      startContainer: [{ path: '/hook.sh', args: ['hook.sh', 'startContainer'] }],
      poststart: [r.hostHook('poststart')],
      poststop: [r.hostHook('poststop')],
    };
  });

  const create = b.rt.create(b.id, b.dir);
  t.equal(create.code, 0, `create exits 0 (${describe(create)})`);
  r.mark('create-returned');
  const pid = readState(b.rt, b.id).pid;
  const containerMnt = nsId(pid, 'mnt');
  const containerUts = nsId(pid, 'uts');
  const hostMnt = nsId('self', 'mnt');
  const hostUts = nsId('self', 'uts');
  t.not(containerMnt, hostMnt, 'the container has its own mount namespace');

  const start = b.rt.start(b.id);
  t.equal(start.code, 0, `start exits 0 (${describe(start)})`);
  r.mark('start-returned');
  t.ok(await waitForStatus(b.rt, b.id, 'stopped'), 'the process ran and exited');
  r.mark('delete-called');
  const del = b.rt.delete(b.id);
  t.equal(del.code, 0, `delete exits 0 (${describe(del)})`);
  r.mark('delete-returned');

  const entries = r.entries();
  const kinds = entries.map((e) => e.kind);
  t.comment(`sequence: ${kinds.join(' → ')}`);
  const at = (k: string): number => kinds.indexOf(k);
  for (const k of ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop', 'process']) {
    t.equal(kinds.filter((x) => x === k).length, 1, `${k} ran exactly once`);
  }
  t.ok(at('createRuntime') < at('createContainer'), 'createRuntime before createContainer');
  t.ok(at('prestart') < at('createContainer'), 'prestart before createContainer');
  t.ok(at('createContainer') < at('create-returned'), 'createContainer before create returns');
  t.ok(at('startContainer') > at('create-returned'), 'startContainer after create returned (during start)');
  t.ok(at('startContainer') < at('process'), 'startContainer before the user process');
  // runtime-spec: poststart runs "after the user-specified process is executed but before
  // the start operation returns". runc 1.1.5 runs it at the end of create instead.
  const poststartTodo = runtimeName === 'runc' ? 'runc 1.1.5 runs poststart hooks during create' : false;
  t.ok(at('poststart') > at('create-returned'), 'poststart runs during start, not create', { todo: poststartTodo });
  t.ok(at('poststart') > at('startContainer'), 'poststart after startContainer', { todo: poststartTodo });
  t.ok(at('poststart') < at('start-returned'), 'poststart before start returns');
  t.ok(at('poststop') > at('delete-called'), 'poststop runs during delete, not when the process exits');
  t.ok(at('poststop') < at('delete-returned'), 'poststop before delete returns');

  const byKind = new Map(entries.map((e) => [e.kind, e]));
  for (const k of ['prestart', 'createRuntime', 'poststart', 'poststop']) {
    t.equal(byKind.get(k)?.mnt, hostMnt, `${k} runs in the host mount namespace`);
    t.equal(byKind.get(k)?.uts, hostUts, `${k} runs in the host uts namespace`);
  }
  for (const k of ['createContainer', 'startContainer', 'process']) {
    t.equal(byKind.get(k)?.mnt, containerMnt, `${k} runs in the container mount namespace`);
    t.equal(byKind.get(k)?.uts, containerUts, `${k} runs in the container uts namespace`);
  }

  for (const k of ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']) {
    const st = byKind.get(k)?.state;
    t.equal(field(st, 'id'), b.id, `${k}: stdin state has the id`);
    t.equal(field(st, 'bundle'), b.dir, `${k}: stdin state has the bundle`);
    t.type(field(st, 'ociVersion'), 'string', `${k}: stdin state has ociVersion`);
  }
  // The pid is as seen from the namespace the hook runs in (runtime-spec "state").
  for (const k of ['prestart', 'createRuntime', 'poststart']) {
    t.equal(field(byKind.get(k)?.state, 'pid'), pid, `${k}: stdin pid is the host pid of init`);
  }
  for (const k of ['createContainer', 'startContainer']) {
    t.equal(field(byKind.get(k)?.state, 'pid'), 1, `${k}: stdin pid is init's pid inside the container (1)`);
  }
  // The status each hook reads on stdin: "creating" while create runs, "created" for prestart
  // (runtime-spec 1.0 runs it once create is done; crun sends "created") and startContainer,
  // "running" for poststart (after the process is executed), "stopped" for poststop.
  const wanted: Record<string, string> = {
    prestart: 'created', createRuntime: 'creating', createContainer: 'creating', startContainer: 'created', poststart: 'running', poststop: 'stopped',
  };
  const runcSends: Record<string, string> = { prestart: 'creating', poststart: 'created' };
  for (const [k, status] of Object.entries(wanted)) {
    const todo = runtimeName === 'runc' && runcSends[k] !== undefined ? `runc 1.1.5 sends "${runcSends[k]}"` : false;
    t.equal(field(byKind.get(k)?.state, 'status'), status, `${k}: status is "${status}"`, { todo });
  }
});

for (const kind of ['createRuntime', 'prestart', 'createContainer'] as const) {
  t.test(`a failing ${kind} hook fails create and leaves nothing`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const r = rig(t);
    const { b } = r;
    b.writeSpec((s) => {
      s.hooks = { [kind]: [r.hostHook(kind, 3)] };
    });
    const create = b.rt.create(b.id, b.dir, { pidFile: b.pidFile });
    t.not(create.code, 0, `create fails (${describe(create)})`);
    t.ok(r.entries().some((e) => e.kind === kind), `the ${kind} hook did run`);
    t.ok(await waitFor(() => b.leftovers().length === 0, 3000), 'nothing is left');
    t.same(b.leftovers(), [], 'no state entry, process, cgroup or mount');
    t.equal(b.rt.state(b.id).code, 1, 'state says the container does not exist');
  });
}

t.test('a failing poststart hook warns and the container keeps going', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  // runtime-spec: "If a poststart hook fails, the runtime MUST log a warning, but the
  // remaining hooks and lifecycle continue as if the hook had succeeded." runc 1.1.5 runs
  // poststart inside create and fails create instead, so the assertions are TODO under runc.
  const todo = runtimeName === 'runc' ? 'runc 1.1.5 fails create when a poststart hook fails' : false;
  const r = rig(t);
  const { b } = r;
  b.writeSpec((s) => {
    s.hooks = { poststart: [r.hostHook('poststart', 5)], poststop: [r.hostHook('poststop')] };
  });
  const create = b.rt.create(b.id, b.dir);
  t.equal(create.code, 0, `create exits 0 (${describe(create)})`, { todo });
  const start = b.rt.start(b.id);
  t.equal(start.code, 0, `start exits 0 despite the failing poststart hook (${describe(start)})`, { todo });
  const ran = await waitFor(() => r.entries().some((e) => e.kind === 'process'), start.code === 0 ? 3000 : 0);
  t.ok(ran, 'the container process ran', { todo });
  t.ok(r.entries().some((e) => e.kind === 'poststart'), 'the poststart hook ran');
});

t.test('a hook that exceeds its timeout fails create', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t);
  // A distinctive duration so the hook process can be recognised if it is left running.
  const duration = '5.031';
  b.writeSpec((s) => {
    s.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', duration], timeout: 1 }] };
  });
  const started = Date.now();
  const create = b.rt.create(b.id, b.dir);
  const elapsed = Date.now() - started;
  t.not(create.code, 0, `create fails (${describe(create)})`);
  t.ok(elapsed >= 900 && elapsed < 4500, `after about the 1 s timeout, not the 5 s sleep (${elapsed} ms)`);
  const sleeper = (): number[] => allPids().filter((p) => cmdline(p) === `sleep ${duration}`);
  t.ok(await waitFor(() => sleeper().length === 0, 2000), 'the hook process was killed');
  t.ok(await waitFor(() => b.leftovers().length === 0, 3000), 'nothing is left');
  t.same(b.leftovers(), [], 'no state entry, process, cgroup or mount');
});
