/* The per-container exclusive lock every mutating verb holds for its whole run. */
import * as fs from 'node:fs';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import * as native from '../native';
import { containerPaths } from './state-store';

/** A held lock; release() closes the fd, which drops the flock. */
export interface HeldLock {
  release(): void;
}

/** Create and take the lock file `file` of a container directory being published (see publishContainerDir). */
export function lockNew(file: string): HeldLock {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } catch (err) {
    throw wrapSystemError(`create lock ${file}`, err);
  }
  try {
    native.flock(fd, native.LOCK.EX, `lock ${file}`);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return heldLock(fd);
}

function heldLock(fd: number): HeldLock {
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      fs.closeSync(fd);
    },
  };
}

/** Take <root>/<id>/lock exclusively; NotFound ("container does not exist") when the dir is gone. */
export function lockContainer(root: string, id: string): HeldLock {
  const p = containerPaths(root, id);
  let fd: number;
  try {
    fd = fs.openSync(p.lock, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TsrunError('NotFound', 'container does not exist', { cause: err });
    throw wrapSystemError(`open lock ${p.lock}`, err);
  }
  try {
    native.flock(fd, native.LOCK.EX, `lock ${p.lock}`);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  // The container may have been deleted (renamed away) while we waited, and even re-created
  // under the same id: the lock only counts if our fd is still the file at <root>/<id>/lock.
  let current: fs.Stats | undefined;
  try {
    current = fs.statSync(p.lock);
  } catch {
    current = undefined;
  }
  const held = fs.fstatSync(fd);
  if (!current || current.ino !== held.ino || current.dev !== held.dev) {
    fs.closeSync(fd);
    throw new TsrunError('NotFound', 'container does not exist');
  }
  return heldLock(fd);
}
