import * as fs from 'node:fs';
import t from 'tap';
import { checkCallerFds } from '../../../../runtime/cli/caller-fds';
import { callerFdsFromLauncher, dropLauncherEnv } from '../../../../runtime/cli/startup/env';
import { TsrunError } from '../../../../spec/errors';

const isOpen = (fd: number): boolean => {
  try {
    fs.readlinkSync(`/proc/self/fd/${fd}`);
    return true;
  } catch {
    return false;
  }
};

t.test('an fd the launcher did not list is refused, whatever node put there', async (t) => {
  t.throws(() => checkCallerFds(2, ''), new TsrunError('InvalidArgument', '--preserve-fds 2: fd 3 was not passed to tsrun (the caller has it closed), so it cannot be preserved'));
  t.throws(() => checkCallerFds(2, ' 3'), { message: /fd 4 was not passed/ });
  t.doesNotThrow(() => checkCallerFds(0, ''), 'nothing to check');
});

t.test('listed and open passes', { skip: isOpen(3) && isOpen(4) ? false : 'fds 3 and 4 are not both open in this test process' }, async (t) => {
  t.doesNotThrow(() => checkCallerFds(2, ' 3 4 9'));
});

t.test('without the launcher, node event-loop fds are not taken for passed ones', async (t) => {
  const kinds = [3, 4, 5, 6, 7, 8].filter((fd) => /anon_inode:\[?(eventpoll|eventfd)/.test(isOpen(fd) ? fs.readlinkSync(`/proc/self/fd/${fd}`) : ''));
  if (kinds.length === 0) {
    t.plan(0, 'no epoll or eventfd among fds 3-8 here');
    return;
  }
  t.throws(() => checkCallerFds(kinds[0]! - 2, undefined), { message: new RegExp(`fd ${kinds[0]} was not passed`) });
});

t.test('dropLauncherEnv takes the list out of the environment and keeps it', async (t) => {
  const env: NodeJS.ProcessEnv = { TSRUN_CALLER_FDS: ' 3 5', PATH: '/bin' };
  dropLauncherEnv(env);
  t.same(env, { PATH: '/bin' }, 'nothing tsrun starts inherits it');
  t.equal(callerFdsFromLauncher(), ' 3 5');
  dropLauncherEnv({});
  t.equal(callerFdsFromLauncher(), undefined, 'absent without the launcher');
});
