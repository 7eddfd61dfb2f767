/*
 * linux.seccomp → SeccompProgram: the list of libseccomp calls compile.ts makes, as plain data.
 * Pure: no libseccomp, no I/O, so every mapping is unit-tested and the engines' profiles are
 * snapshot-tested on any machine.
 *
 *   defaultAction (+defaultErrnoRet) ─▶ seccomp_init(action)
 *   architectures[]                  ─▶ seccomp_arch_add(token) each (the native arch is always in)
 *   syscalls[i] × names[j]           ─▶ seccomp_rule_add_array(action, nr(name), args)
 *   flags[]                          ─▶ the seccomp(2) flags of the SECCOMP plan op
 *
 * Rules follow the OCI runtime spec (config-linux.md "Seccomp") as runc reads it:
 * - ERRNO and TRACE carry errnoRet in the action's low 16 bits; absent, EPERM (1). The default
 *   action uses defaultErrnoRet the same way.
 * - A rule whose action (with its errno) equals the default action is dropped: it changes nothing,
 *   and seccomp_rule_add(3) refuses it.
 * - The conditions of one rule are ANDed, and libseccomp allows one condition per argument index.
 *   When a rule names the same index twice, it becomes one rule per condition instead (so they are
 *   ORed), which is how runc has always read such rules.
 * - For SCMP_CMP_MASKED_EQ, `value` is the mask and `valueTwo` the value the masked argument must
 *   equal: docker's clone rule {value: 0x7E020000, op: MASKED_EQ} is (arg0 & 0x7E020000) == 0.
 * Unknown actions, operators, architectures and flags are errors here; syscall names are resolved
 * by compile.ts, which skips the ones libseccomp does not know.
 */
import type { Seccomp, SeccompAction, SeccompArg, SeccompOperator } from '../../spec/schema-linux';
import { toU64 } from '../../spec/numbers';
import { TsrunError } from '../../spec/errors';

/** libseccomp's action values (seccomp.h SCMP_ACT_*, the kernel's SECCOMP_RET_*). */
export const SCMP_ACT = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  /** OR the errno into the low 16 bits. */
  ERRNO: 0x00050000,
  /** OR the value handed to the tracer into the low 16 bits. */
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
  NOTIFY: 0x7fc00000,
} as const;

/** libseccomp's `enum scmp_compare`. */
export const SCMP_CMP: Readonly<Record<SeccompOperator, number>> = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
};

/** seccomp(2) SECCOMP_FILTER_FLAG_* bits, as the SECCOMP op's `flags` field carries them. */
export const SECCOMP_FILTER_FLAG = {
  TSYNC: 1,
  LOG: 2,
  SPEC_ALLOW: 4,
  NEW_LISTENER: 8,
  TSYNC_ESRCH: 16,
  WAIT_KILLABLE_RECV: 32,
} as const;

/** One architecture: libseccomp's name for it and its token (the kernel's AUDIT_ARCH_* value). */
export interface SeccompArch {
  readonly oci: string;
  readonly name: string;
  readonly token: number;
}

// AUDIT_ARCH_* = ELF machine | 0x80000000 (64-bit) | 0x40000000 (little-endian), <linux/audit.h>;
// x32 has no audit arch of its own, libseccomp gives it x86_64's without the 64-bit bit.
const ARCHES: readonly (readonly [oci: string, name: string, token: number])[] = [
  ['SCMP_ARCH_X86', 'x86', 0x40000003],
  ['SCMP_ARCH_X86_64', 'x86_64', 0xc000003e],
  ['SCMP_ARCH_X32', 'x32', 0x4000003e],
  ['SCMP_ARCH_ARM', 'arm', 0x40000028],
  ['SCMP_ARCH_AARCH64', 'aarch64', 0xc00000b7],
  ['SCMP_ARCH_MIPS', 'mips', 0x00000008],
  ['SCMP_ARCH_MIPS64', 'mips64', 0x80000008],
  ['SCMP_ARCH_MIPS64N32', 'mips64n32', 0xa0000008],
  ['SCMP_ARCH_MIPSEL', 'mipsel', 0x40000008],
  ['SCMP_ARCH_MIPSEL64', 'mipsel64', 0xc0000008],
  ['SCMP_ARCH_MIPSEL64N32', 'mipsel64n32', 0xe0000008],
  ['SCMP_ARCH_PPC', 'ppc', 0x00000014],
  ['SCMP_ARCH_PPC64', 'ppc64', 0x80000015],
  ['SCMP_ARCH_PPC64LE', 'ppc64le', 0xc0000015],
  ['SCMP_ARCH_S390', 's390', 0x00000016],
  ['SCMP_ARCH_S390X', 's390x', 0x80000016],
  ['SCMP_ARCH_PARISC', 'parisc', 0x0000000f],
  ['SCMP_ARCH_PARISC64', 'parisc64', 0x8000000f],
  ['SCMP_ARCH_RISCV64', 'riscv64', 0xc00000f3],
  // libseccomp 2.6 and later; 2.5 refuses them when the filter is built.
  ['SCMP_ARCH_LOONGARCH64', 'loongarch64', 0xc0000102],
  ['SCMP_ARCH_M68K', 'm68k', 0x00000004],
];

/** Every architecture name linux.seccomp.architectures may hold, with its libseccomp name and token. */
export const SCMP_ARCH: ReadonlyMap<string, SeccompArch> = new Map(
  ARCHES.map(([oci, name, token]) => [oci, { oci, name, token }]),
);

const FLAGS: ReadonlyMap<string, number> = new Map([
  ['SECCOMP_FILTER_FLAG_TSYNC', SECCOMP_FILTER_FLAG.TSYNC],
  ['SECCOMP_FILTER_FLAG_LOG', SECCOMP_FILTER_FLAG.LOG],
  ['SECCOMP_FILTER_FLAG_SPEC_ALLOW', SECCOMP_FILTER_FLAG.SPEC_ALLOW],
  ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV', SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV],
]);

/** EPERM: the errno of an ERRNO (or TRACE) action that gives none, as runc and crun use. */
export const DEFAULT_ERRNO_RET = 1;

/** One argument comparison, in libseccomp's terms (struct scmp_arg_cmp). */
export interface SeccompComparison {
  readonly arg: number;
  readonly op: number;
  readonly datumA: bigint;
  readonly datumB: bigint;
}

/** One seccomp_rule_add_array() call. */
export interface SeccompRule {
  readonly syscall: string;
  readonly action: number;
  readonly args: readonly SeccompComparison[];
  /** Where it came from, for error messages: "linux.seccomp.syscalls[3]". */
  readonly source: string;
}

/** A filter as the list of libseccomp calls that builds it; deterministic for a given input. */
export interface SeccompProgram {
  readonly defaultAction: number;
  /** What a syscall from an architecture not in the filter gets. */
  readonly badArchAction: number;
  readonly architectures: readonly SeccompArch[];
  /** seccomp(2) flags for the SECCOMP op. */
  readonly flags: number;
  /** Some rule is SCMP_ACT_NOTIFY: installing needs a listener fd sent back to the runtime. */
  readonly needsListener: boolean;
  readonly rules: readonly SeccompRule[];
}

function invalid(message: string): TsrunError {
  return new TsrunError('InvalidArgument', message);
}

function errnoData(errnoRet: number | undefined, at: string): number {
  const n = errnoRet ?? DEFAULT_ERRNO_RET;
  // The action keeps 16 bits; a larger value would silently wrap (65536 → errno 0 = "success").
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw invalid(`${at}: must be 0 to 65535, got ${n}`);
  return n;
}

/**
 * The SCMP_ACT value of an OCI action; `errnoRet` (at `errnoAt` in errors) goes into ERRNO and
 * TRACE and is refused for the others, as config-linux.md requires.
 */
export function actionValue(action: SeccompAction, errnoRet: number | undefined, at: string, errnoAt: string): number {
  const noErrno = (value: number): number => {
    if (errnoRet !== undefined) throw invalid(`${errnoAt}: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${action}`);
    return value;
  };
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return noErrno(SCMP_ACT.KILL_THREAD);
    case 'SCMP_ACT_KILL_PROCESS':
      return noErrno(SCMP_ACT.KILL_PROCESS);
    case 'SCMP_ACT_TRAP':
      return noErrno(SCMP_ACT.TRAP);
    case 'SCMP_ACT_ERRNO':
      return (SCMP_ACT.ERRNO | errnoData(errnoRet, errnoAt)) >>> 0;
    case 'SCMP_ACT_TRACE':
      return (SCMP_ACT.TRACE | errnoData(errnoRet, errnoAt)) >>> 0;
    case 'SCMP_ACT_ALLOW':
      return noErrno(SCMP_ACT.ALLOW);
    case 'SCMP_ACT_LOG':
      return noErrno(SCMP_ACT.LOG);
    case 'SCMP_ACT_NOTIFY':
      return noErrno(SCMP_ACT.NOTIFY);
    default: {
      const unknown: never = action;
      throw invalid(`${at}: unknown action ${JSON.stringify(unknown)}`);
    }
  }
}

function comparison(arg: SeccompArg, at: string): SeccompComparison {
  const op = Object.hasOwn(SCMP_CMP, arg.op) ? SCMP_CMP[arg.op] : undefined;
  if (op === undefined) throw invalid(`${at}.op: unknown operator ${JSON.stringify(arg.op)}`);
  if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) throw invalid(`${at}.index: must be 0 to 5, got ${arg.index}`);
  const masked = op === SCMP_CMP.SCMP_CMP_MASKED_EQ;
  return { arg: arg.index, op, datumA: toU64(arg.value), datumB: masked ? toU64(arg.valueTwo ?? 0) : 0n };
}

/** The comparison lists one syscall gets: one list, or one per condition when an index repeats. */
function conditionSets(args: readonly SeccompComparison[]): readonly (readonly SeccompComparison[])[] {
  const indexes = new Set(args.map((a) => a.arg));
  if (indexes.size === args.length) return [args];
  return args.map((a) => [a]);
}

function flagsValue(names: readonly string[], needsListener: boolean): number {
  let flags = 0;
  for (const [i, name] of names.entries()) {
    const bit = FLAGS.get(name);
    if (bit === undefined) throw invalid(`linux.seccomp.flags[${i}]: unknown flag ${JSON.stringify(name)}`);
    flags |= bit;
  }
  if (needsListener) {
    flags |= SECCOMP_FILTER_FLAG.NEW_LISTENER;
    // seccomp(2): TSYNC with NEW_LISTENER is EINVAL unless TSYNC_ESRCH says how to report a failure.
    if (flags & SECCOMP_FILTER_FLAG.TSYNC) flags |= SECCOMP_FILTER_FLAG.TSYNC_ESRCH;
  } else {
    // The kernel takes WAIT_KILLABLE_RECV only with NEW_LISTENER; without a NOTIFY rule it has
    // nothing to act on, so it is dropped rather than made to fail the install.
    flags &= ~SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV;
  }
  return flags;
}

/** Translate linux.seccomp into the libseccomp calls that build its filter. */
export function translateSeccomp(seccomp: Seccomp): SeccompProgram {
  if (seccomp.defaultAction === 'SCMP_ACT_NOTIFY') {
    throw invalid('linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action');
  }
  const defaultAction = actionValue(seccomp.defaultAction, seccomp.defaultErrnoRet, 'linux.seccomp.defaultAction', 'linux.seccomp.defaultErrnoRet');

  const architectures: SeccompArch[] = [];
  for (const [i, name] of (seccomp.architectures ?? []).entries()) {
    const arch = SCMP_ARCH.get(name);
    if (arch === undefined) throw invalid(`linux.seccomp.architectures[${i}]: unknown architecture ${JSON.stringify(name)}`);
    if (!architectures.includes(arch)) architectures.push(arch);
  }

  const rules: SeccompRule[] = [];
  let needsListener = false;
  for (const [i, entry] of (seccomp.syscalls ?? []).entries()) {
    const at = `linux.seccomp.syscalls[${i}]`;
    const action = actionValue(entry.action, entry.errnoRet, `${at}.action`, `${at}.errnoRet`);
    const args = (entry.args ?? []).map((a, j) => comparison(a, `${at}.args[${j}]`));
    if (action === defaultAction) continue;
    if (entry.action === 'SCMP_ACT_NOTIFY') needsListener = true;
    for (const syscall of entry.names) {
      if (syscall === '') throw invalid(`${at}.names: must not hold an empty name`);
      for (const set of conditionSets(args)) rules.push({ syscall, action, args: set, source: at });
    }
  }

  return {
    defaultAction,
    // KILL_PROCESS rather than libseccomp's KILL_THREAD default: killing only the calling thread
    // leaves the rest of the process running on after a syscall the filter could not judge.
    badArchAction: SCMP_ACT.KILL_PROCESS,
    architectures,
    flags: flagsValue(seccomp.flags ?? [], needsListener),
    needsListener,
    rules,
  };
}

const OP_TEXT: Readonly<Record<number, string>> = { 1: '!=', 2: '<', 3: '<=', 4: '==', 5: '>=', 6: '>' };

/** An action value as text: "allow", "errno(38)", "trace(1)", "kill_process", "0x…" if unknown. */
export function describeAction(action: number): string {
  const data = action & 0xffff;
  switch ((action & 0xffff0000) >>> 0) {
    case SCMP_ACT.KILL_PROCESS:
      return 'kill_process';
    case SCMP_ACT.KILL_THREAD:
      return 'kill_thread';
    case SCMP_ACT.TRAP:
      return 'trap';
    case SCMP_ACT.ERRNO:
      return `errno(${data})`;
    case SCMP_ACT.TRACE:
      return `trace(${data})`;
    case SCMP_ACT.LOG:
      return 'log';
    case SCMP_ACT.ALLOW:
      return 'allow';
    case SCMP_ACT.NOTIFY:
      return 'notify';
    default:
      return `0x${(action >>> 0).toString(16)}`;
  }
}

/** One comparison as text: "arg0 == 0x0", "arg0 & 0x7e020000 == 0x0". */
export function describeComparison(c: SeccompComparison): string {
  const hex = (v: bigint) => `0x${v.toString(16)}`;
  if (c.op === SCMP_CMP.SCMP_CMP_MASKED_EQ) return `arg${c.arg} & ${hex(c.datumA)} == ${hex(c.datumB)}`;
  return `arg${c.arg} ${OP_TEXT[c.op] ?? `op${c.op}`} ${hex(c.datumA)}`;
}

/** A program as text, one line per libseccomp call, for snapshots and debug logs. */
export function describeProgram(p: SeccompProgram): string {
  const lines = [
    `default ${describeAction(p.defaultAction)}`,
    `badarch ${describeAction(p.badArchAction)}`,
    `arch ${p.architectures.map((a) => a.name).join(' ') || '(native only)'}`,
    `flags 0x${p.flags.toString(16)}${p.needsListener ? ' (listener)' : ''}`,
  ];
  for (const r of p.rules) {
    const args = r.args.length > 0 ? ` ${r.args.map(describeComparison).join(' && ')}` : '';
    lines.push(`${describeAction(r.action)} ${r.syscall}${args}`);
  }
  return `${lines.join('\n')}\n`;
}
