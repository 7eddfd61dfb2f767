/*
 * `tsrun exec`: `--process FILE` (what engines send), or a command with runc's flags on top of the
 * container's own process settings. In the foreground tsrun waits, forwards signals and exits
 * with the process's status; with --detach it returns once the process runs (pid in --pid-file).
 */
import { parseProcess, type Process } from '../../spec';
import { parseIdFlag } from '../../spec/ids';
import { TsrunError } from '../../spec/errors';
import { readConfigFile } from '../container/config-file';
import { containerConfig, startExec } from '../container/exec';
import { waitForChild } from '../container/native-wait';
import { readState } from '../container/state-store';
import type { CommandContext } from './context';

/** Flags of exec. */
export interface ExecArgs {
  readonly id: string;
  readonly command: readonly string[];
  readonly processFile?: string | undefined;
  readonly detach: boolean;
  readonly pidFile?: string | undefined;
  readonly preserveFds: number;
  readonly cwd?: string | undefined;
  readonly env: readonly string[];
  readonly user?: string | undefined;
  readonly additionalGids: readonly string[];
  readonly caps: readonly string[];
  readonly noNewPrivs: boolean;
  readonly tty: boolean;
  readonly consoleSocket?: string | undefined;
}

const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGALRM', 'SIGCONT', 'SIGWINCH'];

/** The process to run: --process, or the container's process with the command and flags applied. */
export function execProcess(a: ExecArgs, base: () => Process): Process {
  if (a.processFile !== undefined) {
    return parseProcess(readConfigFile(a.processFile), a.processFile);
  }
  if (a.command.length === 0) throw new TsrunError('InvalidArgument', 'exec: give a command, or --process FILE');
  const b = base();
  let user = b.user;
  if (a.user !== undefined) {
    const m = /^([^:]*)(?::([^:]*))?$/.exec(a.user);
    if (!m) throw new TsrunError('InvalidArgument', `invalid --user ${JSON.stringify(a.user)}: want UID[:GID]`);
    const uid = parseIdFlag(m[1] ?? '', '--user', 'uid');
    user = { ...user, uid, gid: m[2] === undefined ? user.gid : parseIdFlag(m[2], '--user', 'gid') };
  }
  if (a.additionalGids.length > 0) {
    user = { ...user, additionalGids: a.additionalGids.map((g) => parseIdFlag(g, '--additional-gids', 'gid')) };
  }
  const env = [...(b.env ?? [])];
  for (const kv of a.env) {
    const key = kv.split('=')[0];
    const i = env.findIndex((e) => e.split('=')[0] === key);
    if (i >= 0) env[i] = kv;
    else env.push(kv);
  }
  let capabilities = b.capabilities;
  if (a.caps.length > 0) {
    const add = (list: readonly string[] | undefined) => [...new Set([...(list ?? []), ...a.caps])];
    const c = capabilities ?? {};
    capabilities = { ...c, bounding: add(c.bounding), effective: add(c.effective), permitted: add(c.permitted), inheritable: add(c.inheritable), ambient: add(c.ambient) };
  }
  return {
    ...b,
    terminal: a.tty,
    args: [...a.command],
    env,
    cwd: a.cwd ?? b.cwd,
    user,
    ...(capabilities ? { capabilities } : {}),
    noNewPrivileges: a.noNewPrivs || b.noNewPrivileges === true,
  };
}

/** Run `exec`; returns the process's exit status (or 0 with --detach). */
export async function exec(ctx: CommandContext, a: ExecArgs): Promise<number> {
  let proc = execProcess(a, () => {
    const p = containerConfig(readState(ctx.root, a.id).bundle).process;
    if (!p) throw new TsrunError('InvalidArgument', `container ${a.id} has no process in its config to take defaults from`);
    return p;
  });
  // We are the terminal: the helper sizes the pty before the exec (unlike init, an exec'd
  // process does not wait for us after handing over the master, so sizing it then would race).
  if (proc.terminal === true && a.consoleSocket === undefined && !a.detach && process.stdout.isTTY && proc.consoleSize === undefined) {
    const [width, height] = process.stdout.getWindowSize();
    proc = { ...proc, consoleSize: { height, width } };
  }
  let pid = -1;
  let master = -1;
  const forward = (sig: NodeJS.Signals): void => {
    // With our own terminal SIGWINCH is a resize of the pty (terminal-proxy.ts), not a signal to forward.
    if (pid > 0 && !(sig === 'SIGWINCH' && master >= 0)) {
      try {
        process.kill(pid, sig);
      } catch {
        // Gone already; its status arrives through wait.
      }
    }
  };
  if (!a.detach) for (const s of FORWARDED) process.on(s, forward);
  try {
    pid = startExec({
      root: ctx.root, id: a.id, process: proc, detach: a.detach, pidFile: a.pidFile, preserveFds: a.preserveFds,
      consoleSocket: a.consoleSocket, debug: (m) => ctx.log.debug(m),
      onConsole: (fd) => {
        // Sized in the plan already (consoleSize); proxyTerminal sizes it again as it starts.
        master = fd;
      },
    }).pid;
    if (a.detach) return 0;
    if (master < 0) return await waitForChild(pid);
    const { proxyTerminal } = await import('../container/terminal-proxy');
    const proxy = proxyTerminal(master, { input: process.stdin, output: process.stdout });
    const status = await waitForChild(pid);
    await proxy.finish();
    return status;
  } finally {
    for (const s of FORWARDED) process.off(s, forward);
  }
}
