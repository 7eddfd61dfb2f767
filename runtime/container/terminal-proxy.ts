/*
 * `run` and `exec` in the foreground with process.terminal and no --console-socket: tsrun keeps the
 * pty master itself and is the user's terminal for the container, as runc does.
 *
 *   our stdin (raw mode when it is a tty) ──▶ master ──▶ slave = the container's 0-2, ctty
 *   our stdout                           ◀── master ◀──
 *   SIGWINCH / 'resize' on our stdout ──▶ TIOCSWINSZ on the master (the kernel signals the
 *                                          container's foreground process group)
 *
 * When the process has exited, `finish` drains what is still buffered in the pty (the master reads
 * EIO once every slave fd is closed) before the caller deletes the container and exits.
 */
import * as tty from 'node:tty';
import { matchWindowSize } from './console';

/** A running proxy between our stdio and a pty master. */
export interface TerminalProxy {
  /** Drain the remaining output (up to `graceMs`), restore our terminal and release the master. */
  finish(graceMs?: number): Promise<void>;
}

/** Our side of the terminal: normally process.stdin and process.stdout. */
export interface TerminalEnds {
  readonly input: NodeJS.ReadStream;
  readonly output: NodeJS.WriteStream;
}

/** Start proxying between `ends` and the pty `master` (the fd is owned by the proxy from now on). */
export function proxyTerminal(master: number, ends: TerminalEnds): TerminalProxy {
  const { input, output } = ends;
  const resize = (): void => {
    matchWindowSize(master, output);
  };
  resize();
  output.on('resize', resize);
  process.on('SIGWINCH', resize);

  const wasRaw = input.isTTY ? input.isRaw : false;
  if (input.isTTY) input.setRawMode(true);
  // One libuv tty handle for both directions (a second handle on the same fd would clash in epoll);
  // libuv uses a master fd as it is rather than reopening it the way it reopens slaves.
  const pty = new tty.ReadStream(master);
  let closed = false;
  const ended = new Promise<void>((resolve) => {
    const done = (): void => {
      closed = true;
      resolve();
    };
    pty.once('close', done);
    pty.once('end', done);
    // EIO: every slave fd is closed (the container's processes are gone). Not an error for us.
    pty.on('error', done);
  });
  pty.pipe(output, { end: false });
  input.pipe(pty, { end: false });
  input.resume();

  return {
    async finish(graceMs = 2000): Promise<void> {
      if (!closed) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([ended, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
        if (timer !== undefined) clearTimeout(timer);
      }
      output.off('resize', resize);
      process.off('SIGWINCH', resize);
      input.unpipe(pty);
      pty.unpipe(output);
      if (input.isTTY) input.setRawMode(wasRaw);
      input.pause();
      // Our stdin must not keep the event loop (and so tsrun) alive once the container is gone.
      (input as NodeJS.ReadStream & { unref?: () => void }).unref?.();
      pty.destroy();
      await new Promise<void>((r) => (output.writableNeedDrain ? output.once('drain', () => r()) : r()));
    },
  };
}
