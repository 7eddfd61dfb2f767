import t from 'tap';
import type { Seccomp } from '../../../../spec';
import { TsrunError } from '../../../../spec/errors';
import type { Libseccomp, ScmpArgCmp, ScmpFilter } from '../../../../runtime/native/seccomp';
import { BPF_MAXINSNS, SCMP_FLTATR, compileSeccomp } from '../../../../runtime/seccomp/compile';
import { thrown } from '../../../helpers/thrown';

/** A libseccomp stand-in that records every call and knows a few syscalls. */
function fakeLib(opts: { knownArches?: string[]; exportBytes?: number; failRule?: string } = {}) {
  const calls: string[] = [];
  let released = 0;
  const numbers: Record<string, number> = { read: 0, write: 1, clone: 56, personality: 135 };
  const tokens: Record<string, number> = { x86_64: 0xc000003e, x86: 0x40000003, x32: 0x4000003e };
  const known = new Set(opts.knownArches ?? Object.keys(tokens));
  const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
  const lib: Libseccomp = {
    version: { major: 2, minor: 5, micro: 4 },
    apiLevel: () => 6,
    nativeArch: () => 0xc000003e,
    resolveArch: (name) => (known.has(name) ? tokens[name] ?? 1 : undefined),
    resolveSyscall: (arch, name) => {
      calls.push(`resolve ${arch} ${name}`);
      return numbers[name];
    },
    newFilter(defaultAction): ScmpFilter {
      calls.push(`init ${hex(defaultAction)}`);
      return {
        setAttr: (attr, value) => void calls.push(`attr ${attr}=${hex(value)}`),
        addArch: (arch) => void calls.push(`arch ${hex(arch)}`),
        addRule: (action, nr, args: readonly ScmpArgCmp[], what) => {
          if (opts.failRule !== undefined && what.includes(opts.failRule)) {
            throw new TsrunError('InvalidArgument', `${what}: invalid argument`, { errno: 'EINVAL' });
          }
          calls.push(`rule ${hex(action)} ${nr} [${args.map((a) => `${a.arg}/${a.op}/${a.datumA}/${a.datumB}`).join(' ')}]`);
        },
        exportBpf: () => {
          calls.push('export');
          return new Uint8Array(opts.exportBytes ?? 16);
        },
        release: () => void (released++, calls.push('release')),
      };
    },
  };
  return { lib, calls, released: () => released };
}

const sample: Seccomp = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 38,
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  flags: ['SECCOMP_FILTER_FLAG_LOG'],
  syscalls: [
    { names: ['read', 'write', 'no_such_syscall'], action: 'SCMP_ACT_ALLOW' },
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ' }] },
    { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: 8, op: 'SCMP_CMP_NE' }] },
  ],
};

t.test('the libseccomp calls, in order', async (t) => {
  const f = fakeLib();
  const out = compileSeccomp(sample, f.lib);
  t.strictSame(f.calls, [
    'init 0x50026',
    `attr ${SCMP_FLTATR.CTL_NNP}=0x0`,
    `attr ${SCMP_FLTATR.ACT_BADARCH}=0x80000000`,
    'arch 0xc000003e',
    'arch 0x40000003',
    'arch 0x4000003e',
    'resolve 0 read',
    'rule 0x7fff0000 0 []',
    'resolve 0 write',
    'rule 0x7fff0000 1 []',
    'resolve 0 no_such_syscall',
    'resolve 0 clone',
    'rule 0x7fff0000 56 [0/7/2114060288/0]',
    'resolve 0 personality',
    'rule 0x50001 135 [0/1/8/0]',
    'export',
    'release',
  ]);
  t.equal(out.flags, 2, 'SECCOMP_FILTER_FLAG_LOG');
  t.equal(out.needsListener, false);
  t.equal(out.filter.length, 16);
  t.strictSame(out.unknownSyscalls, ['no_such_syscall'], 'unknown names are skipped and reported');
});

t.test('NOTIFY compiles and asks for a listener', async (t) => {
  const f = fakeLib();
  const out = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_NOTIFY' }] }, f.lib);
  t.equal(out.needsListener, true, 'the runtime must pass the listener fd on');
  t.equal(out.flags & 8, 8, 'SECCOMP_FILTER_FLAG_NEW_LISTENER');
});

t.test('an architecture this libseccomp does not know is an error', async (t) => {
  const f = fakeLib({ knownArches: ['x86_64'] });
  const err = thrown(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'] }, f.lib));
  t.equal(err.message, 'linux.seccomp.architectures: SCMP_ARCH_X86 is not supported by libseccomp 2.5.4');
  t.equal(f.released(), 1, 'the filter is released');
});

t.test('a rule libseccomp refuses names its source and the rule', async (t) => {
  const f = fakeLib({ failRule: 'clone' });
  const err = thrown(() => compileSeccomp(sample, f.lib));
  t.equal(err.message, 'linux.seccomp.syscalls[1]: add rule allow clone (arg0 & 0x7e020000 == 0x0): invalid argument');
  t.equal(err.errno, 'EINVAL');
  t.equal(f.released(), 1, 'the filter is released');
});

t.test('the exported program is checked', async (t) => {
  t.equal(
    thrown(() => compileSeccomp(sample, fakeLib({ exportBytes: 12 }).lib)).message,
    'export the seccomp filter: 12 bytes is not a whole number of bpf instructions',
  );
  t.equal(
    thrown(() => compileSeccomp(sample, fakeLib({ exportBytes: (BPF_MAXINSNS + 1) * 8 }).lib)).message,
    'linux.seccomp: the filter has 4097 instructions, the kernel takes at most 4096',
  );
  t.equal(compileSeccomp(sample, fakeLib({ exportBytes: BPF_MAXINSNS * 8 }).lib).filter.length, BPF_MAXINSNS * 8, '4096 is fine');
});
