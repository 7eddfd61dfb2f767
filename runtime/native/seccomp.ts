/*
 * The libseccomp binding: the only module that loads libseccomp.so.2 (Debian's libseccomp2, API
 * 2.5) over FFI. It turns libseccomp's "-errno" returns into TsrunErrors and hands out a small
 * interface, so runtime/seccomp/compile.ts can be tested against a fake.
 *
 *   newFilter(defaultAction) ─▶ setAttr / addArch / addRule … ─▶ exportBpf() ─▶ release()
 *
 * The filter is only exported, never loaded here: exportBpf returns the raw sock_filter array
 * (8 bytes per instruction, host byte order) that the C helper's SECCOMP op installs in the child.
 * libseccomp 2.5 has no export-to-memory call (seccomp_export_bpf_mem is 2.6), so the program is
 * written to an unlinked temporary file and read back.
 *
 * The library is loaded on first use, so commands that never build a filter do not pay for it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as Koffi from 'koffi';
import { TsrunError, codeForErrno, describeErrno } from '../../spec/errors';

/** The soname loaded; Debian's libseccomp2 package ships it. */
export const LIBSECCOMP_SONAME = 'libseccomp.so.2';

/** libseccomp's `struct scmp_arg_cmp`: one comparison of one syscall argument. */
export interface ScmpArgCmp {
  /** Argument index, 0 to 5. */
  readonly arg: number;
  /** `enum scmp_compare` (SCMP_CMP_NE = 1 … SCMP_CMP_MASKED_EQ = 7). */
  readonly op: number;
  /** The compared value; for SCMP_CMP_MASKED_EQ the mask. */
  readonly datumA: bigint;
  /** For SCMP_CMP_MASKED_EQ the value the masked argument must equal; otherwise 0. */
  readonly datumB: bigint;
}

/** libseccomp's version triple (seccomp_version()). */
export interface LibseccompVersion {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
}

/** One libseccomp filter context (scmp_filter_ctx); call release() when done. */
export interface ScmpFilter {
  /** seccomp_attr_set(); `what` names the attribute in errors. */
  setAttr(attr: number, value: number, what: string): void;
  /** seccomp_arch_add(); an arch already in the filter (the native one) is not an error. */
  addArch(arch: number, what: string): void;
  /** seccomp_rule_add_array(); `what` names the rule in errors. */
  addRule(action: number, syscall: number, args: readonly ScmpArgCmp[], what: string): void;
  /** seccomp_export_bpf(): the program as sock_filter bytes. */
  exportBpf(): Uint8Array;
  /** seccomp_release(); the filter must not be used afterwards. */
  release(): void;
}

/** What the compiler needs from libseccomp; the real one comes from libseccomp(). */
export interface Libseccomp {
  readonly version: LibseccompVersion;
  /** seccomp_api_get(): which kernel features libseccomp found (1 to 6 in 2.5). */
  apiLevel(): number;
  /** seccomp_arch_native(): the audit arch token of this process. */
  nativeArch(): number;
  /** seccomp_arch_resolve_name("x86_64"): the token, or undefined when libseccomp does not know it. */
  resolveArch(name: string): number | undefined;
  /**
   * seccomp_syscall_resolve_name_arch(): the syscall number on `arch` (0 = native), a negative
   * pseudo number for a syscall that arch lacks, or undefined for a name libseccomp does not know.
   */
  resolveSyscall(arch: number, name: string): number | undefined;
  /** seccomp_init(): a new filter whose default action is `defaultAction`. */
  newFilter(defaultAction: number): ScmpFilter;
}

/** __NR_SCMP_ERROR: what the resolvers return for an unknown name. */
const NR_SCMP_ERROR = -1;

type Fn = (...args: unknown[]) => unknown;

interface Bound {
  init: Fn;
  release: Fn;
  archAdd: Fn;
  archNative: Fn;
  archResolveName: Fn;
  syscallResolveNameArch: Fn;
  ruleAddArray: Fn;
  attrSet: Fn;
  exportBpf: Fn;
  apiGet: Fn;
  version: LibseccompVersion;
}

let bound: Bound | undefined;
let bindFailure: TsrunError | undefined;
let loaded: Libseccomp | undefined;

const ERRNO_NAMES: Map<number, string> = new Map(
  Object.entries(os.constants.errno).map(([name, num]) => [num, name] as [number, string]),
);

function check(what: string, rc: number, reasons: Readonly<Record<string, string>> = {}): number {
  if (rc >= 0) return rc;
  const name = ERRNO_NAMES.get(-rc) ?? `errno ${-rc}`;
  const why = reasons[name] ?? describeErrno(name);
  throw new TsrunError(codeForErrno(name), `${what}: ${why}`, { errno: name });
}

function bind(): Bound {
  if (bound) return bound;
  // koffi refuses to declare a struct name twice, so a failed load is remembered, not retried.
  if (bindFailure) throw bindFailure;
  try {
    bound = bindOnce();
    return bound;
  } catch (err) {
    bindFailure = err instanceof TsrunError ? err : new TsrunError('Unavailable', `load ${LIBSECCOMP_SONAME}: ${String(err)}`, { cause: err });
    throw bindFailure;
  }
}

function bindOnce(): Bound {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as typeof Koffi;
  let so: Koffi.LibraryHandle;
  try {
    so = koffi.load(LIBSECCOMP_SONAME);
  } catch (err) {
    throw new TsrunError('Unavailable', `load ${LIBSECCOMP_SONAME}: ${(err as Error).message} (apt-get install libseccomp2)`, { cause: err });
  }
  const version = koffi.struct('tsrun_scmp_version', { major: 'uint', minor: 'uint', micro: 'uint' });
  koffi.struct('tsrun_scmp_arg_cmp', { arg: 'uint', op: 'int', datum_a: 'uint64_t', datum_b: 'uint64_t' });
  const f = (sig: string): Fn => so.func(sig) as Fn;
  const versionFn = f('const tsrun_scmp_version *seccomp_version(void)');
  const b: Bound = {
    init: f('void *seccomp_init(uint32_t def_action)'),
    release: f('void seccomp_release(void *ctx)'),
    archAdd: f('int seccomp_arch_add(void *ctx, uint32_t arch_token)'),
    archNative: f('uint32_t seccomp_arch_native(void)'),
    archResolveName: f('uint32_t seccomp_arch_resolve_name(const char *arch_name)'),
    syscallResolveNameArch: f('int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name)'),
    ruleAddArray: f(
      'int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const tsrun_scmp_arg_cmp *arg_array)',
    ),
    attrSet: f('int seccomp_attr_set(void *ctx, int attr, uint32_t value)'),
    exportBpf: f('int seccomp_export_bpf(void *ctx, int fd)'),
    apiGet: f('unsigned int seccomp_api_get(void)'),
    version: koffi.decode(versionFn(), version) as LibseccompVersion,
  };
  // seccomp_rule_add_array with a struct array and seccomp_export_bpf to an fd are both 2.2+, but
  // the actions and the filter flags the compiler relies on (KILL_PROCESS, LOG) came with 2.4.
  if (b.version.major < 2 || (b.version.major === 2 && b.version.minor < 4)) {
    const v = `${b.version.major}.${b.version.minor}.${b.version.micro}`;
    throw new TsrunError('FailedPrecondition', `load ${LIBSECCOMP_SONAME}: version ${v}, tsrun needs 2.4 or later`);
  }
  return b;
}

function exportToBytes(b: Bound, ctx: unknown): Uint8Array {
  // An unlinked file in a private directory: nothing is left behind whatever happens next.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-seccomp-'));
  const file = path.join(dir, 'filter.bpf');
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  try {
    check('export the seccomp filter as bpf', b.exportBpf(ctx, fd) as number);
    const size = fs.fstatSync(fd).size;
    const out = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = fs.readSync(fd, out, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    return new Uint8Array(out.buffer, out.byteOffset, done);
  } finally {
    fs.closeSync(fd);
  }
}

function makeFilter(b: Bound, ctx: unknown): ScmpFilter {
  let released = false;
  const live = (): unknown => {
    if (released) throw new TsrunError('Internal', 'seccomp filter: used after release');
    return ctx;
  };
  return {
    setAttr(attr, value, what) {
      check(`set seccomp filter attribute ${what}`, b.attrSet(live(), attr, value) as number);
    },
    addArch(arch, what) {
      const rc = b.archAdd(live(), arch) as number;
      if (rc === -os.constants.errno.EEXIST) return;
      check(`add seccomp architecture ${what}`, rc);
    },
    addRule(action, syscall, args, what) {
      const cmp = args.map((a) => ({ arg: a.arg, op: a.op, datum_a: a.datumA, datum_b: a.datumB }));
      // seccomp_rule_add(3): EACCES is how libseccomp says the action equals the default action.
      const rc = b.ruleAddArray(live(), action, syscall, cmp.length, cmp.length > 0 ? cmp : null) as number;
      check(what, rc, { EACCES: 'the action equals the default action' });
    },
    exportBpf() {
      return exportToBytes(b, live());
    },
    release() {
      if (released) return;
      released = true;
      b.release(ctx);
    },
  };
}

/** The libseccomp binding, loaded on first call; throws Unavailable when libseccomp2 is missing. */
export function libseccomp(): Libseccomp {
  if (loaded) return loaded;
  const b = bind();
  loaded = {
    version: b.version,
    apiLevel: () => b.apiGet() as number,
    nativeArch: () => b.archNative() as number,
    resolveArch(name) {
      const token = b.archResolveName(name) as number;
      return token === 0 ? undefined : token;
    },
    resolveSyscall(arch, name) {
      const nr = b.syscallResolveNameArch(arch, name) as number;
      return nr === NR_SCMP_ERROR ? undefined : nr;
    },
    newFilter(defaultAction) {
      const ctx = b.init(defaultAction);
      if (ctx === null || ctx === 0n || ctx === undefined) {
        const hex = `0x${(defaultAction >>> 0).toString(16)}`;
        throw new TsrunError('InvalidArgument', `create seccomp filter (default action ${hex}): libseccomp refused the action or the kernel lacks it`);
      }
      return makeFilter(b, ctx);
    },
  };
  return loaded;
}
