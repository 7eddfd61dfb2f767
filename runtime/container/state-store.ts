/*
 * On-disk state of containers under the runtime root:
 *
 *   <root>/                      mode 0700
 *     <id>/                      one directory per container (mkdir is the create-exclusive step)
 *       lock                     flock(LOCK_EX) held by every mutating verb for its whole run
 *       state.json               ContainerState, written temp → fsync → rename (never half-written)
 *       exec.fifo                exists from create until start; init blocks reading it
 *     .<id>.creating-<pid>       a container being published by create: lock and the first
 *                                state.json are made here, then the directory is renamed to <id>
 *     .<id>.deleting-<pid>       a container being deleted: renamed first, then removed
 *
 * state.json schema (version 1):
 *   { version: 1, ociVersion, id, pid, pidStartTime, bundle, rootfs, created, owner,
 *     annotations, hooks: {poststart, poststop}, namespaces: {pid?, mnt?} (ns inode links of init),
 *     processScope: 'pid' | 'mnt' | 'init', cgroupPath, hostMounts?, creating? }
 * Live status is never stored: it is computed on read from the init pid and its start time.
 *
 * `creating` marks a record create writes before it makes anything (cgroup, fifo, init): it
 * names the create process and everything the finished container will own, so when create is
 * killed half-way, `state` reports the leftover and `delete` can remove what it names. The
 * finished record, written once init reports CREATED, has no `creating`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import type { Hook } from '../../spec';

/** Current state.json version. */
export const STATE_VERSION = 1;

/** How a container's processes are found without cgroups (see ContainerState.processScope). */
export type ProcessScope = 'pid' | 'mnt' | 'init';

/** What we remember about a container between invocations. */
export interface ContainerState {
  readonly version: number;
  readonly ociVersion: string;
  readonly id: string;
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat at create: tells a reused pid from our init. */
  readonly pidStartTime: string;
  readonly bundle: string;
  readonly rootfs: string;
  /** RFC 3339 creation time. */
  readonly created: string;
  readonly owner: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly hooks: { readonly poststart: readonly Hook[]; readonly poststop: readonly Hook[] };
  /** Namespace links of init ("pid:[4026532]") to find its processes after it is gone. */
  readonly namespaces: { readonly pid?: string; readonly mnt?: string };
  /**
   * Which processes belong to the container when they must all be signalled (kill --all,
   * delete): everything in init's pid namespace when the container created it, else everything
   * in its mount namespace when it created that, else init alone. A namespace joined by path
   * belongs to someone else and is never swept.
   */
  readonly processScope: ProcessScope;
  /** The container's cgroup path (relative paths are under the runtime's own cgroup). */
  readonly cgroupPath?: string | undefined;
  /**
   * The container has no mount namespace of its own: its mounts were made in the caller's, under
   * the rootfs, and `delete` unmounts them.
   */
  readonly hostMounts?: boolean | undefined;
  /** Present while create has not finished: the create process (see the file comment). */
  readonly creating?: ProcessIdentity | undefined;
}

/** A process, told apart from a later one with the same pid by its start time. */
export interface ProcessIdentity {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat. */
  readonly startTime: string;
}

/** Valid container ids: what runc accepts (letters, digits, _ + - .), not "." or "..". */
export function checkId(id: string): void {
  if (!/^[\w+\-.]+$/.test(id) || id === '.' || id === '..' || id.length > 1024) {
    throw new TsrunError('InvalidArgument', `invalid container id ${JSON.stringify(id)}: use letters, digits and _ + - . only`);
  }
}

/** Paths of one container's files. */
export interface ContainerPaths {
  readonly dir: string;
  readonly state: string;
  readonly lock: string;
  readonly fifo: string;
}

/** The paths under <root> for container id. */
export function containerPaths(root: string, id: string): ContainerPaths {
  const dir = path.join(root, id);
  return { dir, state: path.join(dir, 'state.json'), lock: path.join(dir, 'lock'), fifo: path.join(dir, 'exec.fifo') };
}

/** Make sure the runtime root exists with mode 0700. */
export function ensureRoot(root: string): void {
  try {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw wrapSystemError(`create runtime root ${root}`, err);
  }
}

/** Create the container directory; fails with AlreadyExists when the id is taken. */
export function createContainerDir(root: string, id: string): ContainerPaths {
  checkId(id);
  ensureRoot(root);
  const p = containerPaths(root, id);
  try {
    fs.mkdirSync(p.dir, { mode: 0o711 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new TsrunError('AlreadyExists', `container with id ${id} already exists`, { cause: err });
    }
    throw wrapSystemError(`create state directory ${p.dir}`, err);
  }
  return p;
}

/**
 * Publish a new container directory holding `record` as state.json and a lock held by the
 * caller: both are made in a hidden directory first, which is then renamed to <root>/<id>, so
 * no reader ever sees a container directory without a state. AlreadyExists when the id is taken.
 */
export function publishContainerDir<L extends { release(): void }>(root: string, record: ContainerState, lockAt: (file: string) => L): { paths: ContainerPaths; lock: L } {
  checkId(record.id);
  ensureRoot(root);
  const p = containerPaths(root, record.id);
  const hidden = path.join(root, `.${record.id}.creating-${process.pid}`);
  try {
    fs.mkdirSync(hidden, { mode: 0o711 });
  } catch (err) {
    throw wrapSystemError(`create state directory ${hidden}`, err);
  }
  let lock: L | undefined;
  try {
    lock = lockAt(path.join(hidden, 'lock'));
    writeRecord(path.join(hidden, 'state.json'), record, false);
    crashPoint('publish');
    fs.renameSync(hidden, p.dir);
    return { paths: p, lock };
  } catch (err) {
    lock?.release();
    fs.rmSync(hidden, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTEMPTY') throw new TsrunError('AlreadyExists', `container with id ${record.id} already exists`, { cause: err });
    if (err instanceof TsrunError) throw err;
    throw wrapSystemError(`create state directory ${p.dir}`, err);
  }
}

/**
 * Remove the hidden directories of `id` that a killed create or delete left behind (their
 * process is gone): they hold at most a lock and a state record, never anything else.
 */
export function sweepHidden(root: string, id: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return;
  }
  const prefix = `.${id}.`;
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(creating|deleting)-(\d+)$/.exec(n.slice(prefix.length));
    if (!m || fs.existsSync(`/proc/${m[2]}`)) continue;
    fs.rmSync(path.join(root, n), { recursive: true, force: true });
  }
}

/**
 * Test-only: SIGKILL this process when TSRUN_TEST_KILL_AT names `stage`, so the crash tests can
 * stop create at each step. Read at the call (not at load: the start-up snapshot would freeze it).
 */
export function crashPoint(stage: string): void {
  if (process.env['TSRUN_TEST_KILL_AT'] === stage) process.kill(process.pid, 'SIGKILL');
}

/** Read a container's state; NotFound ("container does not exist") when there is none. */
export function readState(root: string, id: string): ContainerState {
  checkId(id);
  const p = containerPaths(root, id);
  let text: string;
  try {
    text = fs.readFileSync(p.state, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new TsrunError('NotFound', 'container does not exist', { cause: err });
    throw wrapSystemError(`read ${p.state}`, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new TsrunError('Internal', `read ${p.state}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const s = parsed as Partial<ContainerState>;
  if (s.version !== STATE_VERSION || typeof s.id !== 'string' || typeof s.pid !== 'number') {
    throw new TsrunError('FailedPrecondition', `read ${p.state}: state version ${String(s.version)} is not ${STATE_VERSION}`);
  }
  return s as ContainerState;
}

/**
 * Write state.json atomically: temp file, rename. `durable` adds the fsyncs of the file and the
 * directory; the interim records of create go without, as they guard against the death of
 * create, not of the machine (after a reboot nothing they name exists any more).
 */
export function writeState(root: string, state: ContainerState, durable = true): void {
  writeRecord(containerPaths(root, state.id).state, state, durable);
}

function writeRecord(file: string, state: ContainerState, durable: boolean): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(state));
      if (durable) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    if (!durable) return;
    const dfd = fs.openSync(path.dirname(file), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw wrapSystemError(`write ${file}`, err);
  }
}

/** Remove a container's directory: rename it to a hidden name first so readers never see half of it. */
export function removeContainerDir(root: string, id: string): void {
  const p = containerPaths(root, id);
  const hidden = path.join(root, `.${id}.deleting-${process.pid}`);
  try {
    fs.renameSync(p.dir, hidden);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw wrapSystemError(`remove state directory ${p.dir}`, err);
  }
  try {
    fs.rmSync(hidden, { recursive: true, force: true });
  } catch (err) {
    throw wrapSystemError(`remove state directory ${hidden}`, err);
  }
}

/** Ids of all containers under root (hidden entries being deleted are skipped). */
export function listIds(root: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw wrapSystemError(`list ${root}`, err);
  }
  return names.filter((n) => !n.startsWith('.')).sort();
}
