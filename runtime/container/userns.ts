/*
 * User namespace id maps, written by the runtime into /proc/<pid>/{uid,gid}_map while init waits
 * for GO (user_namespaces(7): each map is written once, in a single write(2)).
 */
import * as fs from 'node:fs';
import type { IDMapping } from '../../spec';
import { wrapSystemError } from '../../spec/errors';
import { mapText } from '../plan/build';

function writeOnce(file: string, text: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'w');
  } catch (err) {
    throw wrapSystemError(`open ${file}`, err);
  }
  try {
    fs.writeSync(fd, text);
  } catch (err) {
    throw wrapSystemError(`write ${file} (${JSON.stringify(text.trim())})`, err);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Write init's uid and gid maps. `denySetgroups` writes "deny" to setgroups first, which the
 * kernel requires before an unprivileged writer may set a gid map.
 */
export function writeIdMaps(pid: number, uids: readonly IDMapping[], gids: readonly IDMapping[], denySetgroups: boolean): void {
  writeOnce(`/proc/${pid}/uid_map`, mapText(uids));
  if (denySetgroups) writeOnce(`/proc/${pid}/setgroups`, 'deny');
  writeOnce(`/proc/${pid}/gid_map`, mapText(gids));
}
