/*
 * `tsrun run`: create + start. In the foreground tsrun waits for init (its own child), forwards
 * the signals it receives, deletes the container, and exits with init's status (128+signal when
 * it was killed). With --detach it returns once the container runs. With process.terminal and no
 * --console-socket, tsrun is the container's terminal (terminal-proxy.ts).
 */
import { createContainer } from '../container/create';
import { deleteContainer, startContainer } from '../container/lifecycle';
import * as native from '../container/native-wait';
import type { TerminalProxy } from '../container/terminal-proxy';
import type { CreateArgs } from './create';
import type { CommandContext } from './context';

const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGALRM', 'SIGCONT', 'SIGWINCH', 'SIGTTIN', 'SIGTTOU', 'SIGTSTP'];

/** Run `run`; returns the exit code. */
export async function run(ctx: CommandContext, a: CreateArgs & { readonly detach: boolean; readonly keep: boolean }): Promise<number> {
  let master = -1;
  const state = createContainer({
    root: ctx.root, systemdCgroup: ctx.systemdCgroup, debug: (m) => ctx.log.debug(m), warn: (m) => ctx.log.warn(m), ...a, detached: a.detach,
    onConsole: (fd) => {
      master = fd;
    },
  });
  const forward = (sig: NodeJS.Signals): void => {
    // With our own terminal SIGWINCH is a resize of the pty (terminal-proxy.ts), not a signal to forward.
    if (sig === 'SIGWINCH' && master >= 0) return;
    try {
      process.kill(state.pid, sig);
    } catch {
      // Init is already gone; its exit status arrives through wait.
    }
  };
  // Handlers go in before start so a signal during start is forwarded rather than killing tsrun.
  if (!a.detach) for (const s of FORWARDED) process.on(s, forward);
  try {
    let proxy: TerminalProxy | undefined;
    try {
      // Our terminal is the container's before it runs anything: size set, output copied from the start.
      if (master >= 0) proxy = (await import('../container/terminal-proxy')).proxyTerminal(master, { input: process.stdin, output: process.stdout });
      for (const w of startContainer(ctx.root, a.id)) ctx.log.warn(w);
    } catch (err) {
      await proxy?.finish(0);
      await deleteContainer(ctx.root, a.id, true).catch(() => []);
      throw err;
    }
    if (a.detach) return 0;
    const status = await native.waitForChild(state.pid);
    await proxy?.finish();
    if (!a.keep) for (const w of await deleteContainer(ctx.root, a.id, true)) ctx.log.warn(w);
    return status;
  } finally {
    for (const s of FORWARDED) process.off(s, forward);
  }
}
