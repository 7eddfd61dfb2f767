import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSpec } from '../../../../spec';
import type { HostFacts } from '../../../../runtime/host/probe';
import { buildExecPlan, type ExecPlanOptions } from '../../../../runtime/plan/exec';
import { encodePlan } from '../../../../runtime/plan/encode';

const host: HostFacts = {
  cgroupMode: 'hybrid',
  cgroupHierarchies: [{ mountpoint: '/sys/fs/cgroup/memory', root: '/', version: 1, controllers: ['memory'] }],
  hasKcore: true,
  capLastCap: 40,
  hasSystemd: false,
};
const spec = parseSpec(fs.readFileSync(path.resolve(__dirname, '../../../fixtures/spec/good/runc-default.json'), 'utf8'), 'runc-default.json');
const proc = { ...spec.process!, args: ['sh'], noNewPrivileges: true };
const base: ExecPlanOptions = { initPid: 4242, preserveFds: 0, id: 'c1' } as unknown as ExecPlanOptions;
const seccomp = { filter: new Uint8Array(8), flags: 8, needsListener: true };

t.test('with a pidfd, one NS_PIDFD op covers every namespace and precedes the path joins', async (t) => {
  const ops = buildExecPlan(proc, spec, host, { ...base, initPidfd: 7 }).ops;
  const names = ops.map((o) => o.op);
  const i = names.indexOf('NS_PIDFD');
  t.ok(i > 0, 'NS_PIDFD is there');
  t.ok(names.slice(0, i).every((n) => n === 'CLOSE_FDS' || n === 'SET_NAME'), 'only close-fds and set-name come before it');
  const joins = ops.filter((o) => o.op === 'NAMESPACE');
  t.ok(joins.length > 0, 'the path joins stay as the fallback');
  t.ok(names.indexOf('NAMESPACE') > i, 'after it');
  const pidfdOp = ops[i] as { fd: number; nstypes: number };
  t.equal(pidfdOp.fd, 7, 'the inherited pidfd');
  t.equal(pidfdOp.nstypes, joins.reduce((m, o) => m | (o as { nstype: number }).nstype, 0) >>> 0, 'the union of the joined namespace types');
  t.ok(encodePlan({ version: 2, ops }).length > 0, 'encodes');
});

t.test('without a pidfd there is no NS_PIDFD op', async (t) => {
  const ops = buildExecPlan(proc, spec, host, base).ops;
  t.notOk(ops.some((o) => o.op === 'NS_PIDFD'), 'path joins only');
  t.match(ops.find((o) => o.op === 'NAMESPACE'), { path: /^\/proc\/4242\/ns\// }, 'through init\'s /proc links');
});

t.test('a filter with a listener is installed before CREATED, so its fd reaches the runtime', async (t) => {
  const names = buildExecPlan(proc, spec, host, { ...base, seccomp }).ops.map((o) => o.op);
  t.ok(names.indexOf('SECCOMP') >= 0 && names.indexOf('SECCOMP') < names.indexOf('CREATED'), 'SECCOMP before CREATED');
  const plain = buildExecPlan(proc, spec, host, { ...base, seccomp: { ...seccomp, needsListener: false } }).ops.map((o) => o.op);
  t.ok(plain.indexOf('SECCOMP') > plain.indexOf('CREATED'), 'without a listener it stays last, after CREATED');
  t.equal(plain[plain.length - 1], 'EXEC', 'exec last');
});

t.test('stdio fds become a STDIO op right after CLOSE_FDS (-1 keeps the inherited fd); without them, none', async (t) => {
  const { STDIO_INHERIT } = await import('../../../../runtime/plan/ops');
  const ops = buildExecPlan(proc, spec, host, { ...base, stdio: [9, -1, 9] }).ops;
  t.same(ops.slice(0, 2).map((o) => o.op), ['CLOSE_FDS', 'STDIO']);
  t.same(ops[1], { op: 'STDIO', fd0: 9, fd1: STDIO_INHERIT, fd2: 9 });
  t.notOk(buildExecPlan(proc, spec, host, base).ops.some((o) => o.op === 'STDIO'));
  t.ok(encodePlan(buildExecPlan(proc, spec, host, { ...base, stdio: [9, -1, 9] })).length > 0, 'encodes');
});

t.test('cgroup joins follow every namespace join (the pidfd and the path fallback)', async (t) => {
  const join = [{ op: 'CGROUP_JOIN', fd: 11, mode: 0 }] as const;
  const names = buildExecPlan(proc, spec, host, { ...base, initPidfd: 7, cgroupJoin: join }).ops.map((o) => o.op);
  t.equal(names.indexOf('CGROUP_JOIN'), names.lastIndexOf('NAMESPACE') + 1, 'directly after the namespace ops');
  t.ok(names.indexOf('NS_PIDFD') < names.indexOf('CGROUP_JOIN'), 'and after NS_PIDFD');
});
