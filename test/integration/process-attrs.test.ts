/**
 * process.scheduler, process.ioPriority and linux.personality reach the container's process,
 * observed from inside through /proc/self/sched, /proc/self/stat, ionice and uname.
 */
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { fact, parseFacts } from '../helpers/facts';
import { requires } from '../helpers/requires';
import { describe, runtimeName } from '../helpers/runtime';

t.test('scheduler policy and nice, io priority, 32-bit personality', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  if (runtimeName === 'runc') {
    t.plan(0, 'runc 1.1 does not apply scheduler, ioPriority or personality');
    return;
  }
  const b = makeBundle(t, {
    args: ['sh', '-c', [
      'echo "@@policy $(grep -E "^policy" /proc/self/sched | tr -d " " | cut -d: -f2)"',
      'echo "@@nice $(cut -d" " -f19 /proc/self/stat)"',
      'echo "@@ionice $(ionice -p $$)"',
      'echo "@@arch $(uname -m)"',
    ].join('; ')],
    patch: (s) => {
      const p = s.process as typeof s.process & Record<string, unknown>;
      p['scheduler'] = { policy: 'SCHED_BATCH', nice: 7 };
      p['ioPriority'] = { class: 'IOPRIO_CLASS_IDLE', priority: 0 };
      (s.linux as typeof s.linux & Record<string, unknown>)['personality'] = { domain: 'LINUX32' };
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'policy'), '3', 'SCHED_BATCH is policy 3');
  t.equal(fact(f, 'nice'), '7', 'nice 7');
  t.match(fact(f, 'ionice') ?? '', /idle/, 'idle io class');
  t.match(fact(f, 'arch') ?? '', /^i.86$/, 'uname -m reports a 32-bit machine under PER_LINUX32');
});

t.test('personality flags are refused with the field named', async (t) => {
  if (!requires(t, 'root', 'busybox', 'not-runc')) return;
  const b = makeBundle(t, {
    patch: (s) => {
      (s.linux as typeof s.linux & Record<string, unknown>)['personality'] = { domain: 'LINUX', flags: ['ADDR_NO_RANDOMIZE'] };
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 1, 'run fails');
  t.match(r.stderr, /linux\.personality\.flags: .*not supported/, 'the error names linux.personality.flags');
});
