import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Seccomp, SeccompAction, SeccompOperator } from '../../../../spec';
import { thrown } from '../../../helpers/thrown';
import {
  DEFAULT_ERRNO_RET,
  SCMP_ACT,
  SCMP_ARCH,
  SCMP_CMP,
  SECCOMP_FILTER_FLAG,
  actionValue,
  describeProgram,
  translateSeccomp,
  type SeccompProgram,
} from '../../../../runtime/seccomp/translate';

const fixtures = path.resolve(__dirname, '../../../fixtures/seccomp');
const profile = (name: string): Seccomp => JSON.parse(fs.readFileSync(path.join(fixtures, name), 'utf8')) as Seccomp;

/** A profile that denies everything but the rules given. */
const deny = (syscalls: Seccomp['syscalls'], extra: Partial<Seccomp> = {}): Seccomp => ({
  defaultAction: 'SCMP_ACT_ERRNO',
  ...extra,
  ...(syscalls ? { syscalls } : {}),
});

/** The rules as text lines (after the four header lines). */
const ruleLines = (p: SeccompProgram): string[] => describeProgram(p).trimEnd().split('\n').slice(4);

t.test('every OCI action maps to its SCMP_ACT value', async (t) => {
  const cases: [SeccompAction, number | undefined, number][] = [
    ['SCMP_ACT_ALLOW', undefined, 0x7fff0000],
    ['SCMP_ACT_KILL', undefined, 0x00000000],
    ['SCMP_ACT_KILL_THREAD', undefined, 0x00000000],
    ['SCMP_ACT_KILL_PROCESS', undefined, 0x80000000],
    ['SCMP_ACT_TRAP', undefined, 0x00030000],
    ['SCMP_ACT_LOG', undefined, 0x7ffc0000],
    ['SCMP_ACT_NOTIFY', undefined, 0x7fc00000],
    ['SCMP_ACT_ERRNO', undefined, 0x00050001],
    ['SCMP_ACT_ERRNO', 38, 0x00050026],
    ['SCMP_ACT_ERRNO', 0, 0x00050000],
    ['SCMP_ACT_ERRNO', 0xffff, 0x0005ffff],
    ['SCMP_ACT_TRACE', undefined, 0x7ff00001],
    ['SCMP_ACT_TRACE', 7, 0x7ff00007],
  ];
  for (const [action, errnoRet, want] of cases) {
    t.equal(actionValue(action, errnoRet, 'a', 'e'), want, `${action} errnoRet=${String(errnoRet)}`);
  }
  t.equal(DEFAULT_ERRNO_RET, 1, 'EPERM when errnoRet is absent');
});

t.test('errnoRet: default EPERM on rules, defaultErrnoRet on the default action', async (t) => {
  const p = translateSeccomp(
    deny([
      { names: ['read'], action: 'SCMP_ACT_ERRNO' },
      { names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 22 },
      { names: ['open'], action: 'SCMP_ACT_ALLOW' },
    ], { defaultErrnoRet: 38 }),
  );
  t.equal(p.defaultAction, SCMP_ACT.ERRNO | 38);
  t.strictSame(ruleLines(p), ['errno(1) read', 'errno(22) write', 'allow open']);
  t.equal(translateSeccomp(deny([])).defaultAction, SCMP_ACT.ERRNO | 1, 'default ERRNO without defaultErrnoRet is EPERM');
});

t.test('errnoRet out of range or on an action without an errno is refused', async (t) => {
  t.equal(
    thrown(() => translateSeccomp(deny([{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 65536 }]))).message,
    'linux.seccomp.syscalls[0].errnoRet: must be 0 to 65535, got 65536',
  );
  t.equal(
    thrown(() => translateSeccomp(deny([{ names: ['read'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }]))).message,
    'linux.seccomp.syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW',
  );
  t.equal(
    thrown(() => translateSeccomp({ defaultAction: 'SCMP_ACT_KILL', defaultErrnoRet: 38 })).message,
    'linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL',
  );
});

t.test('every operator maps to enum scmp_compare', async (t) => {
  const ops: [SeccompOperator, number, string][] = [
    ['SCMP_CMP_NE', 1, 'arg1 != 0x5'],
    ['SCMP_CMP_LT', 2, 'arg1 < 0x5'],
    ['SCMP_CMP_LE', 3, 'arg1 <= 0x5'],
    ['SCMP_CMP_EQ', 4, 'arg1 == 0x5'],
    ['SCMP_CMP_GE', 5, 'arg1 >= 0x5'],
    ['SCMP_CMP_GT', 6, 'arg1 > 0x5'],
    ['SCMP_CMP_MASKED_EQ', 7, 'arg1 & 0x5 == 0x0'],
  ];
  for (const [op, num, text] of ops) {
    t.equal(SCMP_CMP[op], num, op);
    const p = translateSeccomp(deny([{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 5, valueTwo: 9, op }] }]));
    const cmp = p.rules[0]?.args[0];
    t.equal(cmp?.op, num, `${op} op`);
    t.equal(cmp?.datumA, 5n, `${op} datum_a is value`);
    // valueTwo only means something to MASKED_EQ; elsewhere datum_b is 0.
    t.equal(cmp?.datumB, op === 'SCMP_CMP_MASKED_EQ' ? 9n : 0n, `${op} datum_b`);
    t.equal(ruleLines(p)[0], `allow read ${text.replace('== 0x0', '== 0x9')}`, `${op} text`);
  }
});

t.test('MASKED_EQ: value is the mask, valueTwo the value the masked argument must equal', async (t) => {
  const docker = profile('docker-default.json');
  const clone = translateSeccomp(docker).rules.filter((r) => r.syscall === 'clone');
  t.strictSame(clone.map((r) => r.args), [[{ arg: 0, op: 7, datumA: 0x7e020000n, datumB: 0n }]], 'docker: (arg0 & 0x7E020000) == 0');
  const p = translateSeccomp(
    deny([{ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 0xff00, valueTwo: 0x5400, op: 'SCMP_CMP_MASKED_EQ' }] }]),
  );
  t.strictSame(p.rules[0]?.args, [{ arg: 1, op: 7, datumA: 0xff00n, datumB: 0x5400n }]);
  t.strictSame(ruleLines(p), ['allow ioctl arg1 & 0xff00 == 0x5400']);
});

t.test('u64 values: 2^64 from JSON.parse clamps to the u64 maximum', async (t) => {
  const p = translateSeccomp(deny([{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2 ** 64, op: 'SCMP_CMP_EQ' }] }]));
  t.equal(p.rules[0]?.args[0]?.datumA, 0xffffffffffffffffn);
});

t.test('one rule per name; conditions on distinct indexes stay in one rule (AND)', async (t) => {
  const p = translateSeccomp(
    deny([
      {
        names: ['socket', 'socketpair'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 22,
        args: [
          { index: 0, value: 16, op: 'SCMP_CMP_EQ' },
          { index: 2, value: 9, op: 'SCMP_CMP_EQ' },
        ],
      },
    ]),
  );
  t.strictSame(ruleLines(p), ['errno(22) socket arg0 == 0x10 && arg2 == 0x9', 'errno(22) socketpair arg0 == 0x10 && arg2 == 0x9']);
  t.equal(p.rules[0]?.source, 'linux.seccomp.syscalls[0]');
});

t.test('a repeated argument index splits the rule into one rule per condition (OR)', async (t) => {
  const p = translateSeccomp(
    deny([
      {
        names: ['personality'],
        action: 'SCMP_ACT_ALLOW',
        args: [
          { index: 0, value: 0, op: 'SCMP_CMP_EQ' },
          { index: 0, value: 8, op: 'SCMP_CMP_EQ' },
          { index: 1, value: 3, op: 'SCMP_CMP_GT' },
        ],
      },
    ]),
  );
  t.strictSame(ruleLines(p), ['allow personality arg0 == 0x0', 'allow personality arg0 == 0x8', 'allow personality arg1 > 0x3']);
});

t.test('rules whose action equals the default action are dropped', async (t) => {
  const p = translateSeccomp(
    deny(
      [
        { names: ['a'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
        { names: ['b'], action: 'SCMP_ACT_ERRNO' },
        { names: ['c'], action: 'SCMP_ACT_ALLOW' },
      ],
      { defaultErrnoRet: 38 },
    ),
  );
  t.strictSame(ruleLines(p), ['errno(1) b', 'allow c'], 'ERRNO(38) equals the default; ERRNO(1) does not');
  const allow = translateSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW' }] });
  t.equal(allow.rules.length, 0);
});

t.test('architectures map to libseccomp names and tokens, in order, without duplicates', async (t) => {
  const p = translateSeccomp(deny([], { architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_X86'] }));
  t.strictSame(
    p.architectures.map((a) => [a.name, a.token]),
    [['x86_64', 0xc000003e], ['x86', 0x40000003], ['x32', 0x4000003e]],
  );
  t.equal(SCMP_ARCH.get('SCMP_ARCH_AARCH64')?.token, 0xc00000b7);
  t.equal(translateSeccomp(deny([])).architectures.length, 0, 'none given: the native arch only');
});

t.test('flags become seccomp(2) flag bits', async (t) => {
  const flags = (f: string[], syscalls: Seccomp['syscalls'] = []) => translateSeccomp(deny(syscalls, { flags: f })).flags;
  t.equal(flags([]), 0);
  t.equal(flags(['SECCOMP_FILTER_FLAG_TSYNC']), SECCOMP_FILTER_FLAG.TSYNC);
  t.equal(flags(['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW']), 2 | 4);
  t.equal(flags(['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV']), 0, 'WAIT_KILLABLE_RECV needs a listener; dropped without one');
  const notify: Seccomp['syscalls'] = [{ names: ['mount'], action: 'SCMP_ACT_NOTIFY' }];
  t.equal(flags(['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'], notify), 8 | 32, 'NOTIFY adds NEW_LISTENER');
  t.equal(flags(['SECCOMP_FILTER_FLAG_TSYNC'], notify), 1 | 8 | 16, 'TSYNC with a listener adds TSYNC_ESRCH');
});

t.test('NOTIFY: translated completely, needsListener set', async (t) => {
  const p = translateSeccomp(deny([{ names: ['mount'], action: 'SCMP_ACT_NOTIFY' }], { listenerPath: '/run/agent.sock' }));
  t.equal(p.needsListener, true);
  t.strictSame(ruleLines(p), ['notify mount']);
  t.equal(translateSeccomp(deny([{ names: ['mount'], action: 'SCMP_ACT_ALLOW' }])).needsListener, false);
  t.equal(
    thrown(() => translateSeccomp({ defaultAction: 'SCMP_ACT_NOTIFY' })).message,
    'linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action',
  );
});

t.test('unknown action, operator, architecture and flag: InvalidArgument naming the field', async (t) => {
  const bad = <T>(v: string) => v as unknown as T;
  const cases: [string, Seccomp][] = [
    ['linux.seccomp.syscalls[1].action: unknown action "SCMP_ACT_EXPLODE"', deny([{ names: ['a'], action: 'SCMP_ACT_ALLOW' }, { names: ['b'], action: bad<SeccompAction>('SCMP_ACT_EXPLODE') }])],
    ['linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"', { defaultAction: bad<SeccompAction>('SCMP_ACT_NOPE') }],
    ['linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_LIKE"', deny([{ names: ['a'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 1, op: bad<SeccompOperator>('SCMP_CMP_LIKE') }] }])],
    ['linux.seccomp.syscalls[0].args[0].index: must be 0 to 5, got 6', deny([{ names: ['a'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }])],
    ['linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX"', deny([], { architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX'] })],
    ['linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"', deny([], { flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] })],
    ['linux.seccomp.syscalls[0].names: must not hold an empty name', deny([{ names: [''], action: 'SCMP_ACT_ALLOW' }])],
  ];
  for (const [message, seccomp] of cases) {
    const err = thrown(() => translateSeccomp(seccomp));
    t.equal(err.message, message);
    t.equal(err.code, 'InvalidArgument');
  }
});

t.test('docker 20.10 default profile (x86_64, default caps)', async (t) => {
  const p = translateSeccomp(profile('docker-default.json'));
  t.equal(p.rules.length, 357, '357 names, no condition repeats an index');
  t.equal(p.defaultAction, SCMP_ACT.ERRNO | 1);
  t.equal(p.flags, 0);
  t.strictSame(p.architectures.map((a) => a.oci), ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  t.ok(ruleLines(p).includes('errno(38) clone3'), 'clone3 gets ENOSYS so libc falls back to clone');
  t.equal(describeProgram(translateSeccomp(profile('docker-default.json'))), describeProgram(p), 'deterministic');
  t.matchSnapshot(describeProgram(p), 'docker program');
});

t.test('podman 4.3 default profile (x86_64, defaultErrnoRet 38)', async (t) => {
  const p = translateSeccomp(profile('podman-default.json'));
  t.equal(p.rules.length, 434);
  t.equal(p.defaultAction, SCMP_ACT.ERRNO | 38);
  t.ok(ruleLines(p).includes('errno(1) bdflush'), 'per-rule errnoRet 1 under a default of 38');
  t.matchSnapshot(describeProgram(p), 'podman program');
});
