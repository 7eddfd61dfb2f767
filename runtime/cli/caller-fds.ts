/*
 * --preserve-fds N passes fds 3..3+N-1 to the container, and must pass only fds the caller
 * really gave us. When the caller had one of them closed, node's own start-up fds (the event
 * loop's epoll, eventfds, the signal pipe) take the free numbers, and handing those over would
 * give the container a live piece of the runtime. node marks every fd close-on-exec at start,
 * inherited ones included, so the flags cannot tell them apart; the launcher (launcher.sh) lists
 * the caller's fds before node starts instead. Without the launcher (node run on bin/tsrun.js
 * directly) a closed fd, or one of the kinds node makes for itself, is taken as not passed.
 * runc 1.1 hands over whatever sits there; we refuse with the fd named.
 */
import * as fs from 'node:fs';
import { TsrunError } from '../../spec/errors';

/** fd kinds node opens for its event loop; a caller has no reason to pass these. */
const NODE_OWN_KINDS = /^anon_inode:\[?(eventpoll|eventfd|io_uring|timerfd|signalfd|inotify)\]?$/;

function isOpen(fd: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/**
 * Throw InvalidArgument unless every fd in 3..3+count-1 came from the caller. `listed` is the
 * launcher's space-separated list (callerFdsFromLauncher), undefined without the launcher.
 */
export function checkCallerFds(count: number, listed: string | undefined): void {
  const passed = listed === undefined ? undefined : new Set(listed.split(' ').filter((s) => s !== '').map(Number));
  for (let fd = 3; fd < 3 + count; fd++) {
    const link = isOpen(fd);
    const fromCaller = passed !== undefined ? passed.has(fd) && link !== undefined : link !== undefined && !NODE_OWN_KINDS.test(link);
    if (!fromCaller) {
      throw new TsrunError('InvalidArgument', `--preserve-fds ${count}: fd ${fd} was not passed to tsrun (the caller has it closed), so it cannot be preserved`);
    }
  }
}
