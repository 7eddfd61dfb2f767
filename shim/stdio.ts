/*
 * A process's stdio, owned by the shim (docs/containerd-api.md §5):
 *
 *   non-terminal:  client stdin fifo ──(shim)──▶ pipe ──▶ process fd 0
 *                  process fd 1/2 ──▶ pipe ──(shim)──▶ client stdout/stderr fifo | file:// | json log
 *   terminal:      client stdin fifo ──(shim)──▶ pty master ──▶ process (slave on 0-2)
 *                  pty master ──(shim)──▶ client stdout fifo | json log
 *
 * Client fifos: stdin is opened O_RDONLY|O_NONBLOCK (the writer's going away is EOF); stdout and
 * stderr are opened for writing after the shim opened its own read end, so the writes never fail
 * with EPIPE once the client goes (they block in the pipe buffer instead, as with containerd).
 * Anonymous pipes are made as fifos in the shim dir, opened, and unlinked at once (Node has no
 * pipe(2)). The process's ends are plain blocking descriptors; the shim's ends go to libuv.
 * With a terminal the master arrives over a console socket (`--console-socket`, runc's wire
 * shape: one message, SCM_RIGHTS); it is received with pauseOnConnect so libuv never reads
 * (and drops) the ancillary data.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { TsrunError, wrapSystemError } from '../spec/errors';
import * as native from '../runtime/native';
import type { StdioSpec } from './api';
import type { JsonLog, LogStream } from './json-log';
import { spawnOwned } from './reaper';

const { O_RDONLY, O_WRONLY, O_NONBLOCK, O_APPEND, O_CREAT } = fs.constants;

/** The stdio of one process as the shim holds it. */
export interface ProcessIo {
  /** What the process gets as fds 0, 1, 2: an fd of ours (-1 = /dev/null). Valid until childEndsClosed(). */
  readonly childFds: readonly [number, number, number];
  /** The --console-socket path when the process has a terminal. */
  readonly consoleSocket?: string;
  /** After the runtime call: close the process's ends; with a terminal, wait for the master and relay. */
  childEndsClosed(): Promise<void>;
  /** Set the terminal's size (TIOCSWINSZ); a no-op without a terminal. */
  resize(width: number, height: number): Promise<void>;
  /** Close the process's stdin (EOF; with a terminal, VEOF). */
  closeStdin(): void;
  /** Resolve when stdout and stderr have been copied to the end (EOF), or after timeoutMs. */
  drain(timeoutMs: number): Promise<void>;
  /** Release everything. */
  close(): void;
}

let pipeSeq = 0;

/** An anonymous pipe: `shim` and `child` ends; `dir` holds the fifo for an instant. */
function makePipe(dir: string, childReads: boolean): { shim: number; child: number } {
  const p = path.join(dir, `.pipe-${process.pid}-${++pipeSeq}`);
  native.mkfifo(p, 0o600);
  try {
    if (childReads) {
      const tmp = fs.openSync(p, O_RDONLY | O_NONBLOCK);
      try {
        const shim = fs.openSync(p, O_WRONLY);
        const child = fs.openSync(p, O_RDONLY);
        return { shim, child };
      } finally {
        fs.closeSync(tmp);
      }
    }
    const shim = fs.openSync(p, O_RDONLY | O_NONBLOCK);
    const child = fs.openSync(p, O_WRONLY);
    return { shim, child };
  } catch (err) {
    throw wrapSystemError(`make pipe ${p}`, err);
  } finally {
    fs.rmSync(p, { force: true });
  }
}

/** One place output goes: a client fifo (as a libuv stream) or an appended file. */
interface Sink {
  write(b: Buffer): boolean;
  onDrain(fn: () => void): void;
  pending(): number;
  close(): void;
}

function isFifo(p: string): boolean {
  try {
    return fs.statSync(p).isFIFO();
  } catch {
    return false;
  }
}

/** Open where a stdout/stderr spec points; undefined for "". */
export function openSink(spec: string): Sink | undefined {
  if (spec === '') return undefined;
  if (spec.startsWith('file://')) return fileSink(new URL(spec).pathname);
  if (spec.includes('://')) throw new TsrunError('InvalidArgument', `stdio ${spec}: only fifo paths and file:// URIs are supported`);
  if (!isFifo(spec)) return fileSink(spec);
  let keep: number;
  let w: number;
  try {
    // Our own read end first: then opening for writing cannot block, and writes never EPIPE.
    keep = fs.openSync(spec, O_RDONLY | O_NONBLOCK);
    w = fs.openSync(spec, O_WRONLY | O_NONBLOCK);
  } catch (err) {
    throw wrapSystemError(`open stdio fifo ${spec}`, err);
  }
  const sock = new net.Socket({ fd: w, readable: false, writable: true });
  sock.on('error', () => undefined);
  return {
    write: (b) => sock.write(b),
    onDrain: (fn) => void sock.once('drain', fn),
    pending: () => sock.writableLength,
    close: () => {
      sock.destroy();
      fs.closeSync(keep);
    },
  };
}

function fileSink(file: string): Sink {
  let fd: number;
  try {
    fd = fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT, 0o640);
  } catch (err) {
    throw wrapSystemError(`open stdio file ${file}`, err);
  }
  return {
    write: (b) => {
      fs.writeSync(fd, b);
      return true;
    },
    onDrain: () => undefined,
    pending: () => 0,
    close: () => fs.closeSync(fd),
  };
}

/** Copy a readable stream to sinks and the json log, pausing while a sink is full. */
function copyOut(src: net.Socket, sinks: readonly Sink[], log: JsonLog | undefined, stream: LogStream, onEnd: () => void): void {
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    log?.end(stream);
    onEnd();
  };
  src.on('data', (b: Buffer) => {
    try {
      log?.write(stream, b);
    } catch {
      // A log that cannot be written must not stop the process's output.
    }
    let full = 0;
    for (const s of sinks) {
      if (!s.write(b)) {
        full++;
        s.onDrain(() => {
          if (--full === 0) src.resume();
        });
      }
    }
    if (full > 0) src.pause();
  });
  src.on('end', end);
  src.on('close', end);
  src.on('error', end); // EIO from a pty master when the last slave closes is the end of output
}

/** Set up stdio for one process. `tag` names its pipes and console socket in dir. */
export async function openProcessIo(dir: string, tag: string, spec: StdioSpec, log: JsonLog | undefined): Promise<ProcessIo> {
  const cleanups: Array<() => void> = [];
  const childEnds: number[] = [];
  const ends: Array<Promise<void>> = [];
  const runCleanups = (): void => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        c();
      } catch {
        // best effort: the descriptors are ours and this is teardown
      }
    }
  };
  try {
    const stdinSrc = spec.stdin === '' ? undefined : openStdinFifo(spec.stdin);
    if (stdinSrc) cleanups.push(() => stdinSrc.destroy());
    const outSink = openSink(spec.stdout);
    if (outSink) cleanups.push(() => outSink.close());
    const errSink = spec.terminal ? undefined : openSink(spec.stderr);
    if (errSink) cleanups.push(() => errSink.close());

    if (spec.terminal) return await terminalIo(dir, tag, stdinSrc, outSink, log, cleanups, runCleanups);

    const fds: [number, number, number] = [-1, -1, -1];
    let stdinWriter: net.Socket | undefined;
    if (stdinSrc) {
      const p = makePipe(dir, true);
      childEnds.push(p.child);
      fds[0] = p.child;
      stdinWriter = new net.Socket({ fd: p.shim, readable: false, writable: true });
      stdinWriter.on('error', () => undefined);
      const w = stdinWriter;
      cleanups.push(() => w.destroy());
      stdinSrc.pipe(w, { end: false });
      stdinSrc.on('end', () => finishWriter(w));
    }
    const outputs: Array<[1 | 2, Sink | undefined, LogStream]> = [[1, outSink, 'stdout'], [2, errSink, 'stderr']];
    for (const [fd, sink, stream] of outputs) {
      if (!sink && !log) continue;
      const p = makePipe(dir, false);
      childEnds.push(p.child);
      fds[fd] = p.child;
      const src = new net.Socket({ fd: p.shim, readable: true, writable: false });
      cleanups.push(() => src.destroy());
      ends.push(new Promise((resolve) => copyOut(src, sink ? [sink] : [], log, stream, resolve)));
    }
    const closeChildEnds = (): void => {
      for (const fd of childEnds.splice(0)) fs.closeSync(fd);
    };
    cleanups.push(closeChildEnds);
    return {
      childFds: fds,
      childEndsClosed: async () => closeChildEnds(),
      resize: async () => undefined,
      closeStdin: () => {
        if (stdinSrc) stdinSrc.unpipe();
        if (stdinWriter) finishWriter(stdinWriter);
      },
      drain: (ms) => drainAll(ends, [outSink, errSink], ms),
      close: runCleanups,
    };
  } catch (err) {
    for (const fd of childEnds) fs.closeSync(fd);
    runCleanups();
    throw err;
  }
}

/** The client's stdin fifo as a libuv stream. */
function openStdinFifo(p: string): net.Socket {
  let fd: number;
  try {
    fd = fs.openSync(p, O_RDONLY | O_NONBLOCK);
  } catch (err) {
    throw wrapSystemError(`open stdin fifo ${p}`, err);
  }
  const s = new net.Socket({ fd, readable: true, writable: false });
  s.on('error', () => undefined);
  return s;
}

/** Close a writer once what it holds is written (a fifo has no shutdown(2)). */
function finishWriter(w: net.Socket): void {
  if (w.destroyed) return;
  if (w.writableLength === 0) w.destroy();
  else w.once('drain', () => w.destroy());
}

async function drainAll(ends: ReadonlyArray<Promise<void>>, sinks: ReadonlyArray<Sink | undefined>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((r) => {
    timer = setTimeout(r, ms);
  });
  const flushed = (async () => {
    await Promise.all(ends);
    // What the libuv streams still queue goes out as the client reads it.
    while (sinks.some((s) => s !== undefined && s.pending() > 0)) await new Promise((r) => setTimeout(r, 10));
  })();
  await Promise.race([flushed, timeout]);
  if (timer) clearTimeout(timer);
}

/** Terminal stdio: a console socket for the runtime, then relay the master it sends. */
async function terminalIo(
  _dir: string,
  tag: string,
  stdinSrc: net.Socket | undefined,
  outSink: Sink | undefined,
  log: JsonLog | undefined,
  cleanups: Array<() => void>,
  runCleanups: () => void,
): Promise<ProcessIo> {
  // The OCI runtime binary connects to this path itself, so it must fit in sun_path whatever the
  // shim directory's length: a short private directory under the temp dir, as containerd does.
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), `tsrun-pty-${tag.slice(0, 8)}-`));
  const sockPath = path.join(sockDir, 'pty.sock');
  let resolveMaster: (fd: number) => void = () => undefined;
  let rejectMaster: (e: Error) => void = () => undefined;
  const master = new Promise<number>((res, rej) => {
    resolveMaster = res;
    rejectMaster = rej;
  });
  master.catch(() => undefined);
  const server = net.createServer({ pauseOnConnect: true }, (conn) => {
    const fd = (conn as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    const tryRecv = (left: number): void => {
      try {
        const got = native.recvFd(fd);
        conn.destroy();
        resolveMaster(got.fd);
      } catch (err) {
        if (err instanceof TsrunError && (err.errno === 'EAGAIN' || err.errno === 'EWOULDBLOCK') && left > 0) setTimeout(() => tryRecv(left - 1), 10);
        else {
          conn.destroy();
          rejectMaster(wrapSystemError('receive the pty master on the console socket', err));
        }
      }
    };
    tryRecv(1000);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(sockPath, () => res());
  });
  const closeServer = (): void => {
    server.close();
    fs.rmSync(sockDir, { recursive: true, force: true });
  };
  cleanups.push(closeServer);
  let masterFd = -1;
  let term: tty.ReadStream | undefined;
  const ends: Array<Promise<void>> = [];
  return {
    childFds: [-1, -1, -1],
    consoleSocket: sockPath,
    childEndsClosed: async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        masterFd = await Promise.race([
          master,
          new Promise<number>((_r, rej) => {
            timer = setTimeout(() => rej(new TsrunError('Unavailable', `console socket ${sockPath}: no pty master within 10 s`)), 10_000);
          }),
        ]);
      } finally {
        if (timer) clearTimeout(timer);
        closeServer();
      }
      const t = new tty.ReadStream(masterFd);
      term = t;
      cleanups.push(() => t.destroy());
      ends.push(new Promise((resolve) => copyOut(t, outSink ? [outSink] : [], log, 'stdout', resolve)));
      if (stdinSrc) stdinSrc.on('data', (b: Buffer) => void (t.destroyed || t.write(b)));
    },
    resize: async (width, height) => {
      if (masterFd < 0 || term?.destroyed !== false || width === 0 || height === 0) return;
      // TIOCSWINSZ on the master resizes the slave and sends SIGWINCH: natively when the helper
      // has it, else stty with the master as its stdin does the ioctl.
      const setWinsize = (native as { setWindowSize?: (fd: number, rows: number, cols: number) => void }).setWindowSize;
      if (typeof setWinsize === 'function') {
        setWinsize(masterFd, height, width);
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const c = spawnOwned('stty', ['cols', String(width), 'rows', String(height)], { stdio: [masterFd, 'ignore', 'pipe'] });
        let err = '';
        c.stderr?.on('data', (b: Buffer) => (err += b.toString()));
        c.on('error', (e) => reject(wrapSystemError('resize pty: run stty', e)));
        c.on('exit', (code) => (code === 0 ? resolve() : reject(new TsrunError('Internal', `resize pty to ${width}x${height}: stty: ${err.trim() || `exit ${code}`}`))));
      });
    },
    closeStdin: () => {
      stdinSrc?.destroy();
      if (term && !term.destroyed) term.write(Buffer.from([4]));
    },
    drain: (ms) => drainAll(ends, [outSink], ms),
    close: runCleanups,
  };
}
