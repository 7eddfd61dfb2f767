/*
 * Starting a CNI plugin with posix_spawn(3) instead of Node's spawn.
 *
 * libuv starts a child with fork(): the kernel copies every page table of tsrund (tens to hundreds
 * of MiB of heap) before the child execs, and that copy, paid twice per container (ADD and DEL),
 * is a large part of a plugin call where page faults are expensive. glibc's posix_spawn clones
 * with CLONE_VM|CLONE_VFORK: nothing is copied, and only the calling thread waits for the exec.
 *
 * What the child gets is what Node's spawn gives it, and a little less: stdin, stdout and stderr
 * are pipes, every other descriptor is closed (posix_spawn_file_actions_addclosefrom_np, so an fd
 * someone opened without O_CLOEXEC does not reach a plugin either), signals 1-31 are at their
 * default disposition (Node ignores SIGPIPE) and none is blocked. (glibc's posix_spawn leaves its
 * two internal real-time signals, 32 and 33, ignored in every child it makes.)
 *
 * runPosixSpawn is self-contained (it uses only its parameters and require): the plugin runner's
 * worker threads run it from its source text (cni.ts). It binds libc with koffi on first use in
 * its thread and throws when it cannot (the caller then uses Node's spawn).
 *
 * Reaping: the child is no libuv process, so libuv never waits for it (its SIGCHLD handler
 * waitpid()s only the pids of its own children); it is waited for here, once its stdout and stderr
 * are closed (it has exited, or is about to), by a waitid(WNOHANG) at once and then after 1, 2,
 * 4 … 50 ms. A plugin killed at the timeout is waited for at once, without waiting for pipes a
 * process it started may hold.
 */

/** One plugin call (cni.ts' PluginCall). */
export interface SpawnCall {
  readonly file: string;
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: string;
  readonly timeoutMs: number;
}

/** What a call gives back (cni.ts' RunnerAnswer). */
export type SpawnAnswer = { readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly stdout: string; readonly stderr: string; readonly timedOut: boolean } | { readonly error: string };

/**
 * Run `m.file` with posix_spawn and call `done` once with its outcome. Throws (before anything was
 * started) when libc cannot be bound; an error of the spawn itself is an answer.
 */
export function runPosixSpawn(koffiPath: string, m: SpawnCall, maxOutput: number, done: (a: SpawnAnswer) => void): void {
  /* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any */
  type Fn = (...args: any[]) => number;
  interface Bound {
    pipe2: Fn;
    close: Fn;
    kill: Fn;
    faInit: Fn;
    faDup2: Fn;
    faCloseFrom: Fn;
    faDestroy: Fn;
    attrInit: Fn;
    attrFlags: Fn;
    attrSigDefault: Fn;
    attrSigMask: Fn;
    attrDestroy: Fn;
    sigfillset: Fn;
    sigemptyset: Fn;
    spawn: Fn;
    waitpid: Fn;
    waitid: Fn;
  }
  const g = globalThis as { __tsrunPluginSpawn?: Bound };
  let c = g.__tsrunPluginSpawn;
  if (c === undefined) {
    const koffi = require(koffiPath) as { load(p: string): { func(sig: string): Fn } };
    const lib = koffi.load('libc.so.6');
    c = {
      pipe2: lib.func('int pipe2(_Inout_ int *fds, int flags)'),
      close: lib.func('int close(int fd)'),
      kill: lib.func('int kill(int pid, int sig)'),
      faInit: lib.func('int posix_spawn_file_actions_init(void *fa)'),
      faDup2: lib.func('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)'),
      faCloseFrom: lib.func('int posix_spawn_file_actions_addclosefrom_np(void *fa, int from)'),
      faDestroy: lib.func('int posix_spawn_file_actions_destroy(void *fa)'),
      attrInit: lib.func('int posix_spawnattr_init(void *attr)'),
      attrFlags: lib.func('int posix_spawnattr_setflags(void *attr, short flags)'),
      attrSigDefault: lib.func('int posix_spawnattr_setsigdefault(void *attr, void *set)'),
      attrSigMask: lib.func('int posix_spawnattr_setsigmask(void *attr, void *set)'),
      attrDestroy: lib.func('int posix_spawnattr_destroy(void *attr)'),
      sigfillset: lib.func('int sigfillset(void *set)'),
      sigemptyset: lib.func('int sigemptyset(void *set)'),
      spawn: lib.func('int posix_spawn(_Inout_ int *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)'),
      waitpid: lib.func('int waitpid(int pid, _Inout_ int *status, int options)'),
      waitid: lib.func('int waitid(int idtype, int id, void *info, int options)'),
    };
    g.__tsrunPluginSpawn = c;
  }
  const net = require('node:net') as typeof import('node:net');
  const os = require('node:os') as typeof import('node:os');
  const O_CLOEXEC = 0o2000000;
  const SIGKILL = 9;
  // glibc's flags (spawn.h)
  const POSIX_SPAWN_SETSIGDEF = 0x04;
  const POSIX_SPAWN_SETSIGMASK = 0x08;
  const P_PID = 1;
  const WEXITED = 4;
  const WNOWAIT = 0x01000000;
  const WNOHANG = 1;
  // every fd this call opened and still owns; each leaves it when closed or handed to a socket
  const owned = new Set<number>();
  const closeFd = (fd: number) => {
    if (owned.delete(fd)) c.close(fd);
  };
  const pipe = (): [number, number] => {
    const fds = new Int32Array(2);
    if (c.pipe2(fds, O_CLOEXEC) !== 0) throw new Error('pipe2 failed');
    owned.add(fds[0]!);
    owned.add(fds[1]!);
    return [fds[0]!, fds[1]!];
  };
  let pid = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sockets: import('node:net').Socket[] = [];
  try {
    const [inR, inW] = pipe();
    const [outR, outW] = pipe();
    const [errR, errW] = pipe();
    // opaque glibc structures, larger than they are (file actions 80 bytes, attr 336, sigset 128)
    const fa = Buffer.alloc(256);
    const attr = Buffer.alloc(1024);
    const all = Buffer.alloc(256);
    const none = Buffer.alloc(256);
    c.faInit(fa);
    c.attrInit(attr);
    try {
      c.sigfillset(all);
      c.sigemptyset(none);
      let rc = c.faDup2(fa, inR, 0) || c.faDup2(fa, outW, 1) || c.faDup2(fa, errW, 2) || c.faCloseFrom(fa, 3);
      rc = rc || c.attrFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) || c.attrSigDefault(attr, all) || c.attrSigMask(attr, none);
      if (rc !== 0) throw new Error(`posix_spawn attributes: error ${rc}`);
      const envp = Object.entries(m.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
      const pidOut = new Int32Array(1);
      rc = c.spawn(pidOut, m.file, fa, attr, [m.file, null], [...envp, null]);
      // posix_spawn returns the error number itself (the exec's error included)
      if (rc !== 0) throw new Error(`spawn ${m.file} ${Object.entries(os.constants.errno).find(([, v]) => v === rc)?.[0] ?? `errno ${rc}`}`);
      pid = pidOut[0]!;
    } finally {
      c.faDestroy(fa);
      c.attrDestroy(attr);
      closeFd(inR);
      closeFd(outW);
      closeFd(errW);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let timedOut = false;
    let open = 2;
    let reaped = false;
    const reap = () => {
      if (reaped) return;
      reaped = true;
      for (const s of sockets) s.destroy();
      // Waited for without reaping (WNOWAIT): the pid stays the plugin's, so the timeout's kill
      // cannot reach another process, until it is reaped below, timer cleared. Polled on this
      // thread rather than waited for on libuv's thread pool, where the waits of a burst of
      // plugins would queue behind (and hold up) tsrund's file system work: the plugin has
      // closed its stdout and stderr, so it has exited or is about to.
      const info = Buffer.alloc(128);
      let delay = 1;
      const check = () => {
        info.fill(0);
        const r = c.waitid(P_PID, pid, info, WEXITED | WNOHANG | WNOWAIT);
        // si_pid (offset 16 in the x86-64 and arm64 siginfo_t) stays 0 while the plugin runs
        if (r === 0 && info.readInt32LE(16) === 0) {
          setTimeout(check, delay);
          delay = Math.min(delay * 2, 50);
          return;
        }
        clearTimeout(timer);
        const status = new Int32Array(1);
        const got = c.waitpid(pid, status, WNOHANG);
        if (r !== 0 || got !== pid) return done({ error: `wait for ${m.file}: waitid ${r}, waitpid ${got}` });
        const st = status[0]!;
        const termsig = st & 0x7f;
        const signals = os.constants.signals as Record<string, number>;
        const signal = termsig === 0 ? null : ((Object.keys(signals).find((k) => signals[k] === termsig) ?? `SIG${termsig}`) as NodeJS.Signals);
        done({ code: termsig === 0 ? (st >> 8) & 0xff : null, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      };
      check();
    };
    const reader = (fd: number, into: Buffer[]) => {
      const s = new net.Socket({ fd, readable: true, writable: false });
      owned.delete(fd);
      sockets.push(s);
      s.on('data', (b: Buffer) => {
        size += b.length;
        if (size <= maxOutput) into.push(b);
      });
      s.on('error', () => undefined);
      s.on('close', () => {
        if (--open === 0) reap();
      });
    };
    timer = setTimeout(() => {
      timedOut = true;
      c.kill(pid, SIGKILL);
      // a process the plugin started may hold its stdout or stderr: the plugin is waited for now
      reap();
    }, m.timeoutMs);
    reader(outR, out);
    reader(errR, err);
    const w = new net.Socket({ fd: inW, readable: false, writable: true });
    owned.delete(inW);
    sockets.push(w);
    // A plugin that exits without reading stdin makes the write fail with EPIPE: its exit says why.
    w.on('error', () => undefined);
    w.end(m.stdin);
  } catch (e) {
    for (const s of sockets) s.destroy();
    for (const fd of [...owned]) closeFd(fd);
    clearTimeout(timer);
    if (pid !== 0) {
      c.kill(pid, SIGKILL);
      c.waitpid(pid, new Int32Array(1), 0);
    }
    done({ error: String((e instanceof Error && e.message) || e) });
  }
}
