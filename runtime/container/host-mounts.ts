/*
 * Mounts of a container without a mount namespace of its own. Like runc, tsrun then makes the
 * config's mounts in the caller's mount namespace, under the rootfs; unlike runc, `delete` (and
 * a failed create) takes them down again, so the caller's mount table ends as it began.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { TsrunError } from '../../spec/errors';

/** Mount points strictly below `dir` in this process's mount namespace, most recent first. */
export function mountsBelow(dir: string): string[] {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    return [];
  }
  const prefix = real === '/' ? '/' : `${real}/`;
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    // mountinfo escapes space, tab, newline and backslash as \ooo (proc(5)).
    const mp = field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp.startsWith(prefix)) out.push(mp);
  }
  return out.reverse();
}

/**
 * Detach every mount below `dir` (the rootfs): a lazy unmount takes each mount's subtree with
 * it, so nothing under the rootfs stays busy. Returns the mount points that were taken down.
 */
export function unmountUnder(dir: string): string[] {
  const points = mountsBelow(dir);
  const done: string[] = [];
  for (const mp of points) {
    // An earlier lazy unmount of a parent already took this one with it.
    if (!mountsBelow(dir).includes(mp)) continue;
    const r = spawnSync('umount', ['--lazy', '--', mp], { encoding: 'utf8' });
    if (r.error) throw new TsrunError('Internal', `unmount ${mp}: ${r.error.message}`, { cause: r.error });
    if (r.status !== 0) throw new TsrunError('FailedPrecondition', `unmount ${mp}: ${r.stderr.trim() || `umount exit status ${String(r.status)}`}`);
    done.push(mp);
  }
  return done;
}
