/**
 * Many CLI calls racing on one container id. Whatever the interleaving, every call must
 * finish, `state` must either print a complete, valid state or say the container does not
 * exist, and a final `delete --force` must leave nothing: no state entry, no losing
 * `init` process, no cgroup, no mount.
 */
import * as fs from 'node:fs';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { parseState, statusOf } from '../helpers/container';
import { requires } from '../helpers/requires';
import { combined, describe, runtimeName, type RunResult } from '../helpers/runtime';
import { waitFor } from '../helpers/wait';

type Op = 'create' | 'start' | 'state' | 'kill' | 'delete' | 'delete-force';

/** 50 operations in a fixed pseudo-random order (same order every run, so failures reproduce). */
function schedule(seed: number): Op[] {
  const pool: Op[] = [];
  const counts: Record<Op, number> = { create: 12, start: 10, state: 12, kill: 6, delete: 6, 'delete-force': 4 };
  for (const [op, n] of Object.entries(counts) as [Op, number][]) for (let i = 0; i < n; i++) pool.push(op);
  let x = seed;
  for (let i = pool.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const j = x % (i + 1);
    const a = pool[i];
    const b = pool[j];
    if (a !== undefined && b !== undefined) {
      pool[i] = b;
      pool[j] = a;
    }
  }
  return pool;
}

for (const seed of [1, 7]) {
  t.test(`50 concurrent operations on one id (seed ${seed})`, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const b = makeBundle(t, { args: ['sleep', '100'] });
    const ops = schedule(seed);
    t.equal(ops.length, 50, '50 operations');

    const results: [Op, RunResult][] = await Promise.all(
      ops.map(async (op): Promise<[Op, RunResult]> => {
        const opts = { timeoutMs: 60_000 };
        switch (op) {
          case 'create':
            return [op, await b.rt.createAsync(b.id, b.dir, { ...opts, pidFile: b.pidFile })];
          case 'start':
            return [op, await b.rt.execAsync(['start', b.id], opts)];
          case 'state':
            return [op, await b.rt.execAsync(['state', b.id], opts)];
          case 'kill':
            return [op, await b.rt.execAsync(['kill', b.id, 'KILL'], opts)];
          case 'delete':
            return [op, await b.rt.execAsync(['delete', b.id], opts)];
          case 'delete-force':
            return [op, await b.rt.execAsync(['delete', '--force', b.id], opts)];
          default: {
            const never: never = op;
            throw new Error(`unknown op ${String(never)}`);
          }
        }
      }),
    );

    const hung = results.filter(([, r]) => r.code === null);
    t.same(hung.map(([op, r]) => `${op}: ${describe(r)}`), [], 'every call finished by itself');

    const badStates: string[] = [];
    for (const [op, r] of results) {
      if (op !== 'state') continue;
      if (r.code === 0) {
        try {
          const s = parseState(r.stdout);
          if (s.id !== b.id) badStates.push(`wrong id: ${r.stdout}`);
        } catch (err) {
          badStates.push(`unparsable state (${String(err)})`);
        }
      } else if (!/does not exist/.test(combined(r))) {
        badStates.push(describe(r));
      }
    }
    t.same(badStates, [], 'every concurrent state printed a valid state or "does not exist"');

    const creates = results.filter(([op]) => op === 'create');
    t.ok(
      creates.some(([, r]) => r.code === 0),
      `at least one create succeeded (${creates.filter(([, r]) => r.code === 0).length} of ${creates.length})`,
    );
    t.comment(
      `outcomes: ${['create', 'start', 'state', 'kill', 'delete', 'delete-force']
        .map((op) => `${op} ${results.filter(([o, r]) => o === op && r.code === 0).length}/${results.filter(([o]) => o === op).length}`)
        .join(', ')}`,
    );

    const final = b.rt.state(b.id);
    if (final.code === 0) {
      const s = parseState(final.stdout);
      t.equal(s.id, b.id, `final state is valid (${s.status})`);
      if (s.status === 'created' || s.status === 'running') {
        const pidText = fs.existsSync(b.pidFile) ? fs.readFileSync(b.pidFile, 'utf8') : '(missing)';
        t.equal(pidText, String(s.pid), 'the pid file belongs to the surviving container');
      }
    } else {
      t.match(combined(final), /does not exist/, 'final state: the container does not exist');
    }

    const del = b.rt.delete(b.id, { force: true });
    t.equal(del.code, 0, `delete --force afterwards exits 0 (${describe(del)})`);
    t.equal(statusOf(b.rt, b.id), 'missing', 'the container is gone');
    // runc 1.1.5 takes no lock across a whole create, so racing creates/deletes sometimes
    // orphan a `runc init` (or the started process) with its cgroup after the state is gone
    // ("exec fifo … already exists", "unable to store init state: %!w(<nil>)"). Under runc
    // this is TODO and the leak is purged here so the teardown stays meaningful elsewhere.
    const todo = runtimeName === 'runc' ? 'runc 1.1.5 can orphan an init process under racing create/delete' : false;
    await waitFor(() => b.leftovers().length === 0, 3000);
    const leftovers = runtimeName === 'runc' ? await b.purge() : b.leftovers();
    t.same(leftovers, [], 'nothing left: no state entry, losing init process, cgroup or mount', { todo });
  });
}
