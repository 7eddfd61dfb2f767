/*
 * linux.seccomp → BPF, in the runtime (the parent), with libseccomp: translate.ts says which calls
 * to make, this file makes them and exports the program. The result is the SECCOMP plan op's two
 * fields: `filter` (struct sock_filter[], 8 bytes each) and `flags` (seccomp(2) flags); the C
 * helper installs it with seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog) right before exec.
 *
 * Compiling here rather than in the child keeps libseccomp's allocations out of the child (which
 * may only use preallocated memory after clone), makes every mistake in the profile fail `create`
 * with a message before anything is cloned, and lets the same bytes serve init and every `exec`.
 */
import type { Seccomp } from '../../spec/schema-linux';
import { TsrunError } from '../../spec/errors';
import { libseccomp, type Libseccomp } from '../native/seccomp';
import { describeAction, describeComparison, translateSeccomp, type SeccompProgram } from './translate';

/** libseccomp's `enum scmp_filter_attr` (2.5). */
export const SCMP_FLTATR = {
  ACT_DEFAULT: 1,
  ACT_BADARCH: 2,
  CTL_NNP: 3,
  CTL_TSYNC: 4,
  API_TSKIP: 5,
  CTL_LOG: 6,
  CTL_SSB: 7,
  CTL_OPTIMIZE: 8,
  API_SYSRAWRC: 9,
} as const;

/** BPF_MAXINSNS: the longest program seccomp(2) accepts (the C helper checks it again). */
export const BPF_MAXINSNS = 4096;

/** SCMP_ARCH_NATIVE: resolve syscall names for the arch this process runs on. */
const ARCH_NATIVE = 0;

/** A compiled filter: the SECCOMP op's fields plus what the compiler left out. */
export interface CompiledSeccomp {
  /** struct sock_filter[] in host byte order: the SECCOMP op's `filter`. */
  readonly filter: Uint8Array;
  /** seccomp(2) SECCOMP_FILTER_FLAG_* bits: the SECCOMP op's `flags`. */
  readonly flags: number;
  /** The filter has SCMP_ACT_NOTIFY rules (always false today: compileSeccomp refuses them). */
  readonly needsListener: boolean;
  /** Syscall names libseccomp does not know, skipped as runc skips them; for a debug log. */
  readonly unknownSyscalls: readonly string[];
}

/** Build and export the BPF for a translated program with the given libseccomp. */
export function buildFilter(program: SeccompProgram, lib: Libseccomp): { filter: Uint8Array; unknownSyscalls: string[] } {
  const filter = lib.newFilter(program.defaultAction);
  try {
    // no_new_privs is the NO_NEW_PRIVS op's business (process.noNewPrivileges), and TSYNC and the
    // other load-time flags only matter to seccomp_load(), which we never call: the exported
    // program is the same either way. NNP is cleared anyway so nothing here implies it.
    filter.setAttr(SCMP_FLTATR.CTL_NNP, 0, 'SCMP_FLTATR_CTL_NNP');
    filter.setAttr(SCMP_FLTATR.ACT_BADARCH, program.badArchAction, `SCMP_FLTATR_ACT_BADARCH (${describeAction(program.badArchAction)})`);
    for (const arch of program.architectures) {
      if (lib.resolveArch(arch.name) === undefined) {
        throw new TsrunError('InvalidArgument', `linux.seccomp.architectures: ${arch.oci} is not supported by libseccomp ${versionText(lib)}`);
      }
      filter.addArch(arch.token, arch.oci);
    }

    const numbers = new Map<string, number | undefined>();
    const unknown: string[] = [];
    for (const rule of program.rules) {
      if (!numbers.has(rule.syscall)) {
        const nr = lib.resolveSyscall(ARCH_NATIVE, rule.syscall);
        numbers.set(rule.syscall, nr);
        if (nr === undefined) unknown.push(rule.syscall);
      }
      const nr = numbers.get(rule.syscall);
      // A name libseccomp does not know is most likely a syscall newer than it; runc and crun skip
      // those too, so a profile written for a newer kernel still loads.
      if (nr === undefined) continue;
      const args = rule.args.length > 0 ? ` (${rule.args.map(describeComparison).join(' && ')})` : '';
      filter.addRule(rule.action, nr, rule.args, `${rule.source}: add rule ${describeAction(rule.action)} ${rule.syscall}${args}`);
    }

    const bpf = filter.exportBpf();
    if (bpf.length === 0 || bpf.length % 8 !== 0) {
      throw new TsrunError('Internal', `export the seccomp filter: ${bpf.length} bytes is not a whole number of bpf instructions`);
    }
    if (bpf.length / 8 > BPF_MAXINSNS) {
      throw new TsrunError('InvalidArgument', `linux.seccomp: the filter has ${bpf.length / 8} instructions, the kernel takes at most ${BPF_MAXINSNS}`);
    }
    return { filter: bpf, unknownSyscalls: unknown };
  } finally {
    filter.release();
  }
}

function versionText(lib: Libseccomp): string {
  return `${lib.version.major}.${lib.version.minor}.${lib.version.micro}`;
}

/**
 * Compile linux.seccomp to the BPF program and seccomp(2) flags of the SECCOMP plan op. `lib`
 * defaults to the real libseccomp, loaded on first use.
 */
export function compileSeccomp(seccomp: Seccomp, lib?: Libseccomp): CompiledSeccomp {
  const program = translateSeccomp(seccomp);
  const { filter, unknownSyscalls } = buildFilter(program, lib ?? libseccomp());
  return { filter, flags: program.flags, needsListener: program.needsListener, unknownSyscalls };
}
