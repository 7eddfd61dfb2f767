/*
 * --console-socket: the pty master goes to the engine's socket in runc's wire shape (docs/engines.md
 * §1.7): one sendmsg whose data is "/dev/ptmx" and whose one SCM_RIGHTS fd is the master.
 */
import * as fs from 'node:fs';
import { TsrunError } from '../../spec/errors';
import * as native from '../native';

/**
 * Check the pairing of process.terminal and --console-socket the way runc words it. In the
 * foreground (`run`, `exec` without --detach) tsrun proxies its own terminal instead.
 */
export function checkConsole(terminal: boolean, consoleSocket: string | undefined, detached: boolean): void {
  if (terminal && consoleSocket === undefined && detached) {
    throw new TsrunError('InvalidArgument', 'cannot allocate tty if tsrun will detach without setting console socket');
  }
  if (!terminal && consoleSocket !== undefined) {
    throw new TsrunError('InvalidArgument', 'cannot use console socket if tsrun will not allocate tty (process.terminal is false)');
  }
}

/** Where the pty master goes: the engine's console socket, or our own proxy (foreground run/exec). */
export function deliverConsole(consoleSocket: string | undefined, onConsole: ((master: number) => void) | undefined, master: number): void {
  if (consoleSocket !== undefined) return sendConsole(consoleSocket, master);
  if (master < 0) throw new TsrunError('Internal', 'container process sent no console fd');
  if (onConsole === undefined) {
    fs.closeSync(master);
    throw new TsrunError('Internal', 'a pty master arrived with nowhere to send it');
  }
  onConsole(master);
}

/** Send the master to the console socket, then close our copy. */
export function sendConsole(consoleSocket: string, master: number): void {
  try {
    if (master < 0) throw new TsrunError('Internal', 'container process sent no console fd');
    const sock = native.unixConnect(consoleSocket);
    try {
      native.sendFd(sock, master, '/dev/ptmx');
    } finally {
      fs.closeSync(sock);
    }
  } finally {
    if (master >= 0) fs.closeSync(master);
  }
}

/** Give the pty `master` the window size of `output` when that is a terminal (TIOCSWINSZ); false when it is not. */
export function matchWindowSize(master: number, output: NodeJS.WriteStream): boolean {
  if (!output.isTTY) return false;
  const [cols, rows] = output.getWindowSize();
  try {
    native.setWindowSize(master, rows, cols);
    return true;
  } catch {
    // The master is already closed: the container is gone.
    return false;
  }
}
