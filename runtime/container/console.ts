/*
 * --console-socket: the pty master goes to the engine's socket in runc's wire shape (engines.md
 * §1.7): one sendmsg whose data is "/dev/ptmx" and whose one SCM_RIGHTS fd is the master.
 */
import * as fs from 'node:fs';
import { TsrunError } from '../../spec/errors';
import * as native from '../native';

/** Check the pairing of process.terminal and --console-socket the way runc words it. */
export function checkConsole(terminal: boolean, consoleSocket: string | undefined, detached: boolean): void {
  if (terminal && consoleSocket === undefined) {
    throw new TsrunError(
      'InvalidArgument',
      detached
        ? 'cannot allocate tty if tsrun will detach without setting console socket'
        : 'process.terminal without --console-socket: tsrun cannot proxy its own terminal yet; pass --console-socket',
    );
  }
  if (!terminal && consoleSocket !== undefined) {
    throw new TsrunError('InvalidArgument', 'cannot use console socket if tsrun will not allocate tty (process.terminal is false)');
  }
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
