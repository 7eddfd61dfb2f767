/*
 * The real libseccomp (Debian's libseccomp2): the binding, and the programs compileSeccomp builds
 * for the engines' default profiles. Behaviour is checked without installing anything: a small
 * classic-BPF interpreter below runs the exported program on a struct seccomp_data the way the
 * kernel would, so a test can ask "what does clone(CLONE_NEWUSER) get?" without root.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Seccomp, SeccompOperator } from '../../../../spec';
import { libseccomp, type Libseccomp } from '../../../../runtime/native/seccomp';
import { compileSeccomp } from '../../../../runtime/seccomp/compile';
import { SCMP_ACT, SCMP_ARCH } from '../../../../runtime/seccomp/translate';

const fixtures = path.resolve(__dirname, '../../../fixtures/seccomp');
const profile = (name: string): Seccomp => JSON.parse(fs.readFileSync(path.join(fixtures, name), 'utf8')) as Seccomp;

let lib: Libseccomp | undefined;
let missing = '';
try {
  lib = libseccomp();
} catch (err) {
  missing = `libseccomp2 is not installed: ${(err as Error).message}`;
}
const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;
/** x32 syscalls are x86_64's audit arch with this bit set in the number. */
const X32_SYSCALL_BIT = 0x40000000;
const onX86_64 = lib?.nativeArch() === AUDIT_ARCH_X86_64;
const needLib = { skip: lib ? false : missing };
const needX86_64 = { skip: !lib ? missing : onX86_64 ? false : 'syscall numbers below are x86_64 ones' };

/** What a syscall looks like to a seccomp filter (struct seccomp_data). */
interface SeccompData {
  readonly nr: number;
  readonly arch: number;
  readonly args?: readonly bigint[];
}

/** Run a classic BPF program on seccomp_data as the kernel does; returns the SECCOMP_RET_* value. */
function runBpf(filter: Uint8Array, d: SeccompData): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(d.nr | 0, 0);
  data.writeUInt32LE(d.arch >>> 0, 4);
  (d.args ?? []).forEach((a, i) => data.writeBigUInt64LE(a, 16 + 8 * i));
  const prog = Buffer.from(filter.buffer, filter.byteOffset, filter.length);
  const mem = new Uint32Array(16);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc * 8 < prog.length; ) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    pc++;
    const src = code & 0x08 ? x : k;
    const mode = code & 0xe0;
    const op = code & 0xf0;
    switch (code & 0x07) {
      case 0x00: // BPF_LD: W|ABS, IMM, MEM
        a = mode === 0x20 ? data.readUInt32LE(k) : mode === 0x00 ? k : mode === 0x60 ? mem[k]! : NaN;
        break;
      case 0x01: // BPF_LDX: IMM, MEM
        x = mode === 0x00 ? k : mode === 0x60 ? mem[k]! : NaN;
        break;
      case 0x02:
        mem[k] = a;
        break;
      case 0x03:
        mem[k] = x;
        break;
      case 0x04: { // BPF_ALU
        const r = op === 0x00 ? a + src : op === 0x10 ? a - src : op === 0x40 ? a | src : op === 0x50 ? a & src : op === 0xa0 ? a ^ src
          : op === 0x60 ? a << src : op === 0x70 ? a >>> src : NaN;
        a = r >>> 0;
        if (Number.isNaN(r)) throw new Error(`unknown alu op 0x${code.toString(16)}`);
        break;
      }
      case 0x05: { // BPF_JMP
        if (op === 0x00) {
          pc += k;
          break;
        }
        const taken = op === 0x10 ? a === src : op === 0x20 ? a > src : op === 0x30 ? a >= src : op === 0x40 ? (a & src) !== 0 : undefined;
        if (taken === undefined) throw new Error(`unknown jump 0x${code.toString(16)}`);
        pc += taken ? jt : jf;
        break;
      }
      case 0x06: // BPF_RET
        return (code & 0x10 ? a : k) >>> 0;
      default: // BPF_MISC: TAX / TXA
        if (code & 0x80) a = x;
        else x = a;
    }
    if (Number.isNaN(a) || Number.isNaN(x)) throw new Error(`unknown load 0x${code.toString(16)}`);
  }
  throw new Error('the program ran off its end');
}

const ALLOW = SCMP_ACT.ALLOW;
const ERRNO = (n: number) => SCMP_ACT.ERRNO | n;

t.test('the binding: version, api level, names', needLib, async (t) => {
  const l = lib!;
  t.ok(l.version.major > 2 || (l.version.major === 2 && l.version.minor >= 4), `libseccomp ${l.version.major}.${l.version.minor}.${l.version.micro}`);
  t.ok(l.apiLevel() >= 1, 'seccomp_api_get');
  t.equal(l.resolveSyscall(0, 'no_such_syscall'), undefined, 'unknown name');
  t.equal(l.resolveSyscall(AUDIT_ARCH_I386, 'socketcall'), 102, 'socketcall on x86');
  t.equal(l.resolveArch('no_such_arch'), undefined);
});

t.test('the architecture table agrees with seccomp_arch_resolve_name', needLib, async (t) => {
  for (const arch of SCMP_ARCH.values()) {
    const token = lib!.resolveArch(arch.name);
    // loongarch64 and m68k are newer than libseccomp 2.5.
    if (token === undefined) t.ok(['loongarch64', 'm68k'].includes(arch.name), `${arch.oci}: unknown to this libseccomp`);
    else t.equal(token, arch.token, `${arch.oci} = ${arch.name} 0x${arch.token.toString(16)}`);
  }
});

t.test('the binding turns -errno into TsrunError', needLib, async (t) => {
  const f = lib!.newFilter(ALLOW);
  try {
    t.throws(() => f.addRule(ALLOW, 0, [], 'add rule allow read'), { message: 'add rule allow read: the action equals the default action', code: 'PermissionDenied' });
    t.throws(() => f.addRule(ERRNO(1), 0, [{ arg: 0, op: 99, datumA: 0n, datumB: 0n }], 'add rule'), { message: 'add rule: invalid argument', errno: 'EINVAL' });
  } finally {
    f.release();
  }
  t.throws(() => f.exportBpf(), { message: 'seccomp filter: used after release' });
  t.throws(() => lib!.newFilter(0x12345678), { message: /^create seccomp filter \(default action 0x12345678\): / });
});

for (const [name, file, dflt] of [['docker', 'docker-default.json', ERRNO(1)], ['podman', 'podman-default.json', ERRNO(38)]] as const) {
  t.test(`${name} default profile compiles`, needLib, async (t) => {
    const a = compileSeccomp(profile(file));
    const b = compileSeccomp(profile(file));
    t.equal(a.filter.length % 8, 0, 'whole sock_filter instructions');
    t.ok(a.filter.length / 8 <= 4096, `${a.filter.length / 8} instructions fit BPF_MAXINSNS`);
    t.strictSame([...a.filter.subarray(0, 8)], [0x20, 0, 0, 0, 4, 0, 0, 0], 'starts with ld [4]: the arch check');
    t.ok(Buffer.from(a.filter).equals(Buffer.from(b.filter)), 'deterministic: two compiles, same bytes');
    t.equal(a.flags, 0);
    t.equal(a.needsListener, false);
    t.strictSame(a.unknownSyscalls, [], 'libseccomp knows every name');
    if (onX86_64) t.equal(runBpf(a.filter, { nr: 0x3ff, arch: AUDIT_ARCH_X86_64 }), dflt, 'an unlisted syscall gets the default action');
  });
}

t.test('docker profile behaviour (x86_64)', needX86_64, async (t) => {
  const f = compileSeccomp(profile('docker-default.json')).filter;
  const run = (nr: number, args: readonly bigint[] = [], arch = AUDIT_ARCH_X86_64) => runBpf(f, { nr, arch, args });
  t.equal(run(0), ALLOW, 'read');
  t.equal(run(56, [0x01200011n]), ALLOW, 'clone for fork: CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD');
  t.equal(run(56, [0x10000011n]), ERRNO(1), 'clone(CLONE_NEWUSER): (arg0 & 0x7E020000) != 0');
  t.equal(run(56, [0x00020011n]), ERRNO(1), 'clone(CLONE_NEWNS)');
  t.equal(run(435), ERRNO(38), 'clone3: ENOSYS');
  t.equal(run(135, [0n]), ALLOW, 'personality(PER_LINUX)');
  t.equal(run(135, [0xffffffffn]), ALLOW, 'personality(0xffffffff): query');
  t.equal(run(135, [0x100000000n]), ERRNO(1), 'personality: all 64 bits compared');
  t.equal(run(135, [0x1234n]), ERRNO(1), 'personality(other)');
  t.equal(run(165), ERRNO(1), 'mount');
  t.equal(run(161), ALLOW, 'chroot: CAP_SYS_CHROOT is in the default set');
  t.equal(run(3, [], AUDIT_ARCH_I386), ALLOW, 'x86: read is 3');
  t.equal(run(102, [], AUDIT_ARCH_I386), ALLOW, 'x86: socketcall');
  t.equal(run(X32_SYSCALL_BIT | 0, [], AUDIT_ARCH_X86_64), ALLOW, 'x32: read');
  t.equal(run(0, [], AUDIT_ARCH_AARCH64), SCMP_ACT.KILL_PROCESS, 'an arch not in the filter: kill the process');
});

t.test('podman profile behaviour (x86_64)', needX86_64, async (t) => {
  const f = compileSeccomp(profile('podman-default.json')).filter;
  const run = (nr: number, args: readonly bigint[] = [], arch = AUDIT_ARCH_X86_64) => runBpf(f, { nr, arch, args });
  t.equal(run(0), ALLOW, 'read');
  t.equal(run(0x3ff), ERRNO(38), 'unknown: ENOSYS (defaultErrnoRet 38)');
  t.equal(run(165), ALLOW, 'mount: podman leaves it to the capabilities');
  t.equal(run(246), ERRNO(1), 'kexec_load: errnoRet 1');
  t.equal(run(304), ERRNO(1), 'open_by_handle_at: errnoRet 1 (no CAP_DAC_READ_SEARCH)');
  t.equal(run(323), ERRNO(1), 'userfaultfd: errnoRet 1');
  t.equal(run(41, [16n, 3n, 9n]), ALLOW, 'socket(AF_NETLINK, …, NETLINK_AUDIT): CAP_AUDIT_WRITE is in the set');
  t.equal(run(308), ALLOW, 'setns: the unconditional allow added first wins over the later errno rule');
  t.equal(run(134, [], AUDIT_ARCH_I386), ERRNO(1), 'x86: bdflush');
});

t.test('every operator, as the kernel would see it', needX86_64, async (t) => {
  const ops: [SeccompOperator, bigint[], bigint[]][] = [
    // operator, arg1 values allowed, arg1 values denied (compared with 5)
    ['SCMP_CMP_NE', [4n, 6n], [5n]],
    ['SCMP_CMP_LT', [0n, 4n], [5n, 6n]],
    ['SCMP_CMP_LE', [4n, 5n], [6n]],
    ['SCMP_CMP_EQ', [5n], [4n, 6n, 0x100000005n]],
    ['SCMP_CMP_GE', [5n, 6n, 0x100000000n], [4n]],
    ['SCMP_CMP_GT', [6n, 0x100000000n], [4n, 5n]],
  ];
  for (const [op, allowed, denied] of ops) {
    const { filter } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 5, op }] }],
    });
    for (const v of allowed) t.equal(runBpf(filter, { nr: 0, arch: AUDIT_ARCH_X86_64, args: [0n, v] }), ALLOW, `${op}: arg1 = ${v} allowed`);
    for (const v of denied) t.equal(runBpf(filter, { nr: 0, arch: AUDIT_ARCH_X86_64, args: [0n, v] }), ERRNO(38), `${op}: arg1 = ${v} denied`);
  }
  const { filter } = compileSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['ioctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 25, args: [{ index: 1, value: 0xff00, valueTwo: 0x5400, op: 'SCMP_CMP_MASKED_EQ' }] }],
  });
  const ioctl = (req: bigint) => runBpf(filter, { nr: 16, arch: AUDIT_ARCH_X86_64, args: [1n, req] });
  t.equal(ioctl(0x5401n), ERRNO(25), 'MASKED_EQ: (0x5401 & 0xff00) == 0x5400 matches');
  t.equal(ioctl(0x8901n), ALLOW, 'MASKED_EQ: (0x8901 & 0xff00) != 0x5400');
});

t.test('a repeated index ORs its conditions; distinct indexes AND them', needX86_64, async (t) => {
  const { filter } = compileSeccomp({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }, { index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2, op: 'SCMP_CMP_EQ' }, { index: 1, value: 1, op: 'SCMP_CMP_EQ' }] },
    ],
  });
  const run = (nr: number, args: bigint[]) => runBpf(filter, { nr, arch: AUDIT_ARCH_X86_64, args });
  t.equal(run(135, [0n]), ALLOW);
  t.equal(run(135, [8n]), ALLOW);
  t.equal(run(135, [9n]), ERRNO(1));
  t.equal(run(41, [2n, 1n]), ALLOW, 'AF_INET, SOCK_STREAM');
  t.equal(run(41, [2n, 2n]), ERRNO(1), 'AF_INET, SOCK_DGRAM');
  t.equal(run(41, [10n, 1n]), ERRNO(1), 'AF_INET6, SOCK_STREAM');
});

t.test('names libseccomp does not know are skipped, the rest still apply', needX86_64, async (t) => {
  const out = compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'future_syscall_2031', 'write'], action: 'SCMP_ACT_ALLOW' }] });
  t.strictSame(out.unknownSyscalls, ['future_syscall_2031']);
  t.equal(runBpf(out.filter, { nr: 1, arch: AUDIT_ARCH_X86_64 }), ALLOW, 'write');
});

t.test('flags pass through to the op; the program does not change', needLib, async (t) => {
  const base: Seccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] };
  const plain = compileSeccomp(base);
  const flagged = compileSeccomp({ ...base, flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] });
  t.equal(flagged.flags, 6);
  t.ok(Buffer.from(plain.filter).equals(Buffer.from(flagged.filter)));
});
