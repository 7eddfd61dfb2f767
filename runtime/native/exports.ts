/*
 * The C helper's exported functions, defined once. scripts/gen-native.ts turns this table into
 *
 *   native-helpers/tsrun.h          the C prototypes (and TSRUN_ABI_VERSION)
 *   native-helpers/addon_exports.h  the table native-helpers/addon.c's one Node-API wrapper is driven by
 *   runtime/native/native-lib.ts    the NativeLib interface index.ts loads the addon as
 *
 * and `make check-generated` fails when any of them is stale. A new export is a row here, its C
 * function (api.c, or the file of its subsystem), `make gen`, and a typed wrapper in index.ts.
 *
 * Each argument has a kind that says how it crosses from JS to C, and what the addon checks
 * before it calls (a wrong argument throws a TypeError naming the function):
 *
 *   i32, u32   a Number that fits
 *   u64        a BigInt (or a Number)
 *   str        a string, passed as a NUL-terminated UTF-8 copy; no NUL inside
 *   in         a TypedArray the C function reads; `len` names the argument holding the byte
 *              count, which must not exceed the view
 *   out        a TypedArray the C function writes; at least `len`'s value, or `bytes`, bytes long
 *
 * Every function returns an int: its result, or -errno. An export with `async` also gets a
 * `<name>Async` form that runs the call on a libuv pool thread (on private copies of its buffers,
 * copied back on the main thread) and calls back `done(null, rc)`.
 *
 * This file imports nothing: the generator and the loader both read it.
 */

/** How one argument crosses from JS to C. */
export type ArgKind = 'i32' | 'u32' | 'u64' | 'str' | 'in' | 'out';

/** One argument of an export. */
export interface NativeArg {
  /** The C parameter's name (the TS one is its camelCase). */
  readonly name: string;
  readonly kind: ArgKind;
  /** The C parameter's type, e.g. `const uint8_t *` or `int`. */
  readonly ctype: string;
  /** in/out: the argument that holds the byte count. */
  readonly len?: string;
  /** out without `len`: the fixed size in bytes the C function writes. */
  readonly bytes?: number;
}

/** One exported C function. */
export interface NativeExport {
  /** The JS name, on the addon and in NativeLib. */
  readonly name: string;
  /** The C function (`tsrun_*`). */
  readonly c: string;
  /** What it does and returns; the C header and the TS interface both carry it. */
  readonly doc: string;
  readonly args: readonly NativeArg[];
  /** Also offer `<name>Async`, the call on a pool thread. */
  readonly async?: boolean;
}

const i32 = (name: string, ctype = 'int'): NativeArg => ({ name, kind: 'i32', ctype });
const u32 = (name: string): NativeArg => ({ name, kind: 'u32', ctype: 'uint32_t' });
const u64 = (name: string): NativeArg => ({ name, kind: 'u64', ctype: 'uint64_t' });
const str = (name: string): NativeArg => ({ name, kind: 'str', ctype: 'const char *' });
const input = (name: string, len: string): NativeArg => ({ name, kind: 'in', ctype: 'const uint8_t *', len });
const output = (name: string, ctype: string, size: { len: string } | { bytes: number }): NativeArg => ({ name, kind: 'out', ctype, ...size });

/** The exports, in the order tsrun.h lists them. */
export const NATIVE_EXPORTS: readonly NativeExport[] = [
  {
    name: 'abiVersion',
    c: 'tsrun_abi_version',
    doc: 'TSRUN_ABI_VERSION: a hash of these signatures, which the loader compares with its own.',
    args: [],
  },
  {
    name: 'spawn',
    c: 'tsrun_spawn',
    doc:
      "Decode and check plan, create the sync socket pair and clone the container's init. out[0] = init's host pid, " +
      "out[1] = the runtime's end of the sync socket (CLOEXEC). 0 or -errno, with a message in err.",
    args: [input('plan', 'len'), u32('len'), output('out', 'int32_t *', { bytes: 8 }), output('err', 'char *', { len: 'errlen' }), u32('errlen')],
  },
  {
    name: 'syncSend',
    c: 'tsrun_sync_send',
    doc:
      'Send one sync message: header {type, stage, errno, value} + payload. 0 or -errno. A payload too big for one ' +
      "datagram (GO's hook states with large annotations) travels in a sealed memfd passed with SCM_RIGHTS, when " +
      'stage, errno and value are 0; otherwise it is -EMSGSIZE.',
    args: [i32('fd'), u32('type'), u32('stage'), i32('err', 'int32_t'), i32('value', 'int32_t'), input('payload', 'len'), u32('len')],
  },
  {
    name: 'syncRecv',
    c: 'tsrun_sync_recv_fd',
    doc:
      'Receive one sync message into buf (timeout_ms < 0: wait forever), and the fd passed with it: *rfd is that fd ' +
      '(CLOEXEC) or -1. Bytes received (>= 16), 0 on EOF, -ETIMEDOUT, -EMSGSIZE if truncated, -EPROTO if shorter ' +
      'than a header, or -errno.',
    args: [i32('fd'), i32('timeout_ms', 'int32_t'), output('buf', 'uint8_t *', { len: 'buflen' }), u32('buflen'), output('rfd', 'int32_t *', { bytes: 4 })],
    async: true,
  },
  {
    name: 'unixConnect',
    c: 'tsrun_unix_connect',
    doc: 'A connected SOCK_STREAM unix socket (CLOEXEC) to path, or -errno.',
    args: [str('path')],
  },
  {
    name: 'flock',
    c: 'tsrun_flock',
    doc: 'flock(2), retrying EINTR. 0 or -errno.',
    args: [i32('fd'), i32('op')],
  },
  {
    name: 'waitpid',
    c: 'tsrun_waitpid',
    doc: 'waitpid(2), retrying EINTR. pid, 0 (WNOHANG, none ready) or -errno.',
    args: [i32('pid'), output('status', 'int32_t *', { bytes: 4 }), i32('options')],
    async: true,
  },
  {
    name: 'spawnDetached',
    c: 'tsrun_spawn_detached',
    doc: 'posix_spawn (vfork: the caller\'s page tables are not copied) of path with argv [argv0, arg], in a new session, signals at their defaults and unblocked, 0-2 on /dev/null and fd 3 the write end of a fresh pipe; out[0] = pid, out[1] = the read end (CLOEXEC). The caller reaps the pid. 0 or -errno.',
    args: [str('path'), str('argv0'), str('arg'), output('out', 'int32_t *', { bytes: 8 })],
    async: true,
  },
  {
    name: 'pidfdOpen',
    c: 'tsrun_pidfd_open',
    doc: 'pidfd_open(2). fd or -errno.',
    args: [i32('pid'), u32('flags')],
  },
  {
    name: 'pidfdSendSignal',
    c: 'tsrun_pidfd_send_signal',
    doc: 'pidfd_send_signal(2) with no siginfo. 0 or -errno.',
    args: [i32('pidfd'), i32('sig')],
  },
  {
    name: 'prctl',
    c: 'tsrun_prctl',
    doc: 'prctl(2). Its result or -errno.',
    args: [i32('option'), u64('a2'), u64('a3'), u64('a4'), u64('a5')],
  },
  {
    name: 'mkfifo',
    c: 'tsrun_mkfifo',
    doc: 'mkfifo(3). 0 or -errno.',
    args: [str('path'), u32('mode')],
  },
  {
    name: 'setWinsize',
    c: 'tsrun_set_winsize',
    doc: 'TIOCSWINSZ on a terminal fd. 0 or -errno.',
    args: [i32('fd'), u32('rows'), u32('cols')],
  },
  {
    name: 'sendFd',
    c: 'tsrun_send_fd',
    doc: 'Send fd over a unix socket with name as the data (one sendmsg, one SCM_RIGHTS fd). 0 or -errno.',
    args: [i32('sock'), i32('fd'), str('name')],
  },
  {
    name: 'recvFd',
    c: 'tsrun_recv_fd',
    doc: 'Receive one fd (made CLOEXEC) and its name (NUL-terminated, truncated to namelen). fd or -errno.',
    args: [i32('sock'), output('name', 'char *', { len: 'namelen' }), u32('namelen')],
  },  {
    name: 'sendFds',
    c: 'tsrun_send_fds',
    doc:
      'Send data (at least one byte) and nfds fds (fds: nfds int32 values, at most 16) in one sendmsg with SCM_RIGHTS ' +
      "(the native shim's SPAWN_PLAN). Bytes sent (a stream socket may take fewer) or -errno.",
    args: [i32('sock'), input('data', 'len'), u32('len'), input('fds', 'fdbytes'), u32('fdbytes')],
  },

  {
    name: 'idmappedTree',
    c: 'tsrun_idmapped_tree',
    doc:
      'A detached clone of the mount tree at source (recursive: with submounts), idmapped with a user namespace made ' +
      'from the uid_map/gid_map texts ("inside outside count" lines) and given the mount_setattr(2) attributes ' +
      'attr_set/attr_clr. The tree fd (CLOEXEC) or -errno, with err filled on failure.',
    args: [str('source'), str('uid_map'), str('gid_map'), u32('recursive'), u64('attr_set'), u64('attr_clr'), output('err', 'char *', { len: 'errlen' }), u32('errlen')],
  },
  {
    name: 'bpfProgLoadAttach',
    c: 'tsrun_bpf_prog_load_attach',
    doc:
      "Load insns (len bytes, 8 per instruction) as a BPF_PROG_TYPE_CGROUP_DEVICE program and make it cgroup_fd's " +
      "only one (bpf.c). 0 or -errno; on a verifier rejection, the verifier's text in log.",
    args: [i32('cgroup_fd'), input('insns', 'len'), u32('len'), output('log', 'char *', { len: 'loglen' }), u32('loglen')],
  },
];

/** The most arguments an export takes (the addon's fixed frame). */
export const NATIVE_MAX_ARGS = 8;

/** The C prototype of an export, e.g. `int tsrun_flock(int fd, int op)`. */
export function cPrototype(e: NativeExport): string {
  const params = e.args.length === 0 ? 'void' : e.args.map((a) => `${a.ctype}${a.ctype.endsWith('*') ? '' : ' '}${a.name}`).join(', ');
  return `int ${e.c}(${params})`;
}

/**
 * The ABI version: FNV-1a over every export's JS name and C prototype, in order, to 31 bits. Any
 * change to the table changes it, so a build/tsrun.node from another table is refused at load
 * instead of being called with the wrong arguments; nobody has to remember to bump it.
 */
export function abiVersion(table: readonly NativeExport[] = NATIVE_EXPORTS): number {
  let h = 0x811c9dc5;
  for (const e of table) {
    const text = `${e.name}${e.async ? '+async' : ''}=${cPrototype(e)};`;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/** The C API's ABI version (tsrun_abi_version()). */
export const NATIVE_ABI = abiVersion();
