/*
 * Namespace files a plan joins by path (linux.namespaces[].path for create, /proc/<init>/ns/*
 * for exec), checked before anything is cloned: the path must exist, be a namespace file, and
 * be a namespace of the type it is listed as. Without this the failure shows up only as a
 * broken sync socket once the child dies on setns(2).
 *
 * The type comes from the open fd's /proc/self/fd link: for an nsfs file the kernel names it
 * "<type>:[<inode>]" (ns_dname in fs/nsfs.c), which is the same fact ioctl(NS_GET_NSTYPE) gives.
 * A bind mount of a namespace file (/run/netns/NAME, tsrund's and CNI's namespaces) links to its
 * mount point's path instead: statfs tells it is nsfs, and setns(2), which is given the type,
 * refuses a namespace of another type. The C helper still fails cleanly if the file
 * changes between this check and setns.
 */
import * as fs from 'node:fs';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import { isNamespaceType, type NamespaceType, type Spec } from '../../spec';

/** The kernel's name for each namespace type (what /proc/<pid>/ns/<name> and the nsfs link say). */
const KERNEL_NAME: Readonly<Record<NamespaceType, string>> = {
  pid: 'pid',
  network: 'net',
  mount: 'mnt',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
  time: 'time',
};

const BY_KERNEL_NAME = new Map(Object.entries(KERNEL_NAME).map(([type, name]) => [name, type]));

/** One namespace joined by path; `at` names it in messages (e.g. "linux.namespaces[2].path"). */
export interface NamespacePath {
  readonly at: string;
  readonly type: NamespaceType;
  readonly path: string;
}

/** statfs(2)'s f_type of nsfs (linux/magic.h). */
const NSFS_MAGIC = 0x6e736673;

/**
 * The kernel type name of the namespace behind an open fd; "nsfs" for a namespace file whose type
 * the link does not show (a bind mount of one, as /run/netns/NAME or a CNI namespace: its link is
 * the mount point's path; setns(2) with the type then checks it); undefined for any other file.
 */
function namespaceKind(fd: number): string | undefined {
  const link = fs.readlinkSync(`/proc/self/fd/${fd}`);
  const m = /^([a-z_]+):\[\d+\]$/.exec(link);
  if (m !== null && BY_KERNEL_NAME.has(m[1] ?? '')) return m[1];
  return fs.statfsSync(`/proc/self/fd/${fd}`).type === NSFS_MAGIC ? 'nsfs' : undefined;
}

/** Throw InvalidArgument (or NotFound) naming the path and why, for the first entry that cannot be joined. */
export function checkNamespacePaths(entries: readonly NamespacePath[]): void {
  for (const { at, type, path } of entries) {
    let fd: number;
    try {
      fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw wrapSystemError(`${at} ${path}`, err);
    }
    try {
      const kind = namespaceKind(fd);
      const want = KERNEL_NAME[type];
      if (kind === undefined) throw new TsrunError('InvalidArgument', `${at} ${path}: not a namespace file`);
      if (kind !== want && kind !== 'nsfs') throw new TsrunError('InvalidArgument', `${at} ${path}: is a ${kind} namespace, not ${want}`);
    } catch (err) {
      throw wrapSystemError(`${at} ${path}`, err);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** The namespaces a config.json joins by path, named by their field path. */
export function joinedNamespaces(spec: Spec): NamespacePath[] {
  const out: NamespacePath[] = [];
  for (const [i, ns] of (spec.linux?.namespaces ?? []).entries()) {
    if ((ns.path ?? '') !== '' && isNamespaceType(ns.type)) out.push({ at: `linux.namespaces[${i}].path`, type: ns.type, path: ns.path ?? '' });
  }
  return out;
}

/** The namespaces `exec` joins: init's, through /proc/<initPid>/ns, one per type the container lists. */
export function initNamespaces(spec: Spec, initPid: number): NamespacePath[] {
  const out: NamespacePath[] = [];
  for (const ns of spec.linux?.namespaces ?? []) {
    if (isNamespaceType(ns.type)) out.push({ at: `exec: join the container's ${ns.type} namespace`, type: ns.type, path: `/proc/${initPid}/ns/${KERNEL_NAME[ns.type]}` });
  }
  return out;
}
