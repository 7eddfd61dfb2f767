/*
 * Attached stdio for `run` and `exec`, as ctr does it (docs/containerd-api.md §5):
 *
 *   mkdtemp /tmp/tsctl-XXXXXX/ ── mkfifo stdin stdout stderr ── paths go in Tasks.Create/Exec
 *   stdin   opened O_RDWR|O_NONBLOCK (never blocks, never EOF early); our stdin → fifo; closing
 *           it is EOF for the process
 *   stdout, stderr  opened O_RDONLY|O_NONBLOCK at once, read only once the shim holds a writer
 *           (after Tasks.Create for init, after Tasks.Start for an exec: the shim opens an exec's
 *           fifos when it starts it), so the first read is not a spurious EOF; EOF = output done
 *   -t      stderr "" (the pty merges it); our terminal in raw mode; SIGWINCH → ResizePty
 *
 * close() removes the directory whatever happened.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { wrapSystemError } from '../../spec/errors';
import { mknod, S_IFIFO } from '../diff/syscalls';

/** The client side of one process's fifos. */
export interface Fifos {
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
  /** start copying (after Create/Exec answered); resolves when stdout and stderr reached EOF */
  attach(): Promise<void>;
  /** resolves at EOF of stdout/stderr or after `ms` */
  drained(ms: number): Promise<void>;
  close(): void;
}

// mknod(2) rather than mkfifo(1): a process start per fifo was a good part of a short run's time
function mkfifo(p: string): void {
  mknod(p, S_IFIFO, 0o600, 0, 0);
}

/**
 * Make the fifos of one process: stdin only with `withStdin`, stderr only without a terminal.
 * `input` is called only then: node opens its stdin stream on first access, a cost (and, on a
 * terminal, a mode change) a run without -i must not pay.
 */
export function openFifos(opts: { withStdin: boolean; tty: boolean; input: () => NodeJS.ReadableStream; output: NodeJS.WritableStream; errput: NodeJS.WritableStream }): Fifos {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsctl-'));
  const sockets: net.Socket[] = [];
  const fds: number[] = [];
  let closed = false;
  let attached: Promise<void> | undefined;
  try {
    const p = (n: string): string => path.join(dir, n);
    const stdin = opts.withStdin ? p('stdin') : '';
    const stdout = p('stdout');
    const stderr = opts.tty ? '' : p('stderr');
    for (const f of [stdin, stdout, stderr]) if (f !== '') mkfifo(f);
    const outFd = fs.openSync(stdout, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    fds.push(outFd);
    const errFd = stderr === '' ? -1 : fs.openSync(stderr, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (errFd >= 0) fds.push(errFd);
    const inFd = stdin === '' ? -1 : fs.openSync(stdin, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    if (inFd >= 0) fds.push(inFd);
    const copy = (fd: number, to: NodeJS.WritableStream): Promise<void> =>
      new Promise((resolve) => {
        const s = new net.Socket({ fd, readable: true, writable: false });
        sockets.push(s);
        s.on('data', (b: Buffer) => {
          if (!to.write(b)) {
            s.pause();
            to.once('drain', () => s.resume());
          }
        });
        s.on('end', () => resolve());
        s.on('error', () => resolve());
        s.on('close', () => resolve());
      });
    return {
      stdin,
      stdout,
      stderr,
      attach() {
        if (attached !== undefined) return attached;
        fds.length = 0;
        const ends = [copy(outFd, opts.output)];
        if (errFd >= 0) ends.push(copy(errFd, opts.errput));
        if (inFd >= 0) {
          const w = new net.Socket({ fd: inFd, readable: false, writable: true });
          sockets.push(w);
          w.on('error', () => undefined);
          const input = opts.input();
          input.on('data', (b: Buffer) => {
            if (!w.write(b)) {
              input.pause();
              w.once('drain', () => input.resume());
            }
          });
          input.on('end', () => w.end());
          input.resume();
        }
        attached = Promise.all(ends).then(() => undefined);
        return attached;
      },
      drained(ms) {
        const a = attached ?? Promise.resolve();
        return Promise.race([a, new Promise<void>((r) => setTimeout(r, ms).unref())]);
      },
      close() {
        if (closed) return;
        closed = true;
        for (const s of sockets) s.destroy();
        for (const fd of fds) {
          try {
            fs.closeSync(fd);
          } catch {
            // already closed
          }
        }
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
    throw wrapSystemError(`make fifos in ${dir}`, e);
  }
}

/** Put our terminal in raw mode (for -t); returns the undo. */
export function rawTerminal(input: NodeJS.ReadStream): () => void {
  if (!input.isTTY) return () => undefined;
  input.setRawMode(true);
  return () => {
    try {
      input.setRawMode(false);
    } catch {
      // the terminal went away
    }
  };
}
