/*
 * Mounting one containerd.types.Mount (a snapshotter's answer to Mounts/Prepare) on a directory,
 * for tsrund's task rootfs and for tsctl's look into a container's snapshot. A plain file-system
 * mount (overlay, the usual case) is one mount(2) call; anything else — binds, propagation,
 * recursive attributes, option data of a page or more (mount(2) copies at most a page; an overlay
 * of many layers needs more) — goes to mount(8), which knows each of them. A process start is
 * most of the time of a whole mount, and tsrund must not block its event loop on one.
 */
import { spawnSync } from 'node:child_process';
// not the spec index, which brings zod (tsctl's snapshot holds this module)
import { parseMountOptions } from '../../spec/mount-options';
import { TsrunError } from '../../spec/errors';
import { MNT_DETACH, mount, umount2 } from '../diff/syscalls';

/** One containerd.types.Mount. */
export interface MountSpec {
  type: string;
  source: string;
  options: readonly string[];
}

const MOUNT_DATA_MAX = 4095;
const TYPE = /^[a-z0-9._-]+$/;

/** Mount `m` on `dir`; `what` names the mount in errors ("rootfs mount 0 on /x"). */
export function mountOne(m: MountSpec, dir: string, what: string): void {
  if (!TYPE.test(m.type)) throw new TsrunError('InvalidArgument', `${what}: type ${JSON.stringify(m.type)}: invalid argument`);
  const options = m.options.filter((x) => x !== '');
  if (options.some((o) => o.includes(','))) throw new TsrunError('InvalidArgument', `${what}: an option contains a comma: invalid argument`);
  const o = parseMountOptions(options);
  const plain = !o.isBind && o.propagations.length === 0 && o.recAttrSet === 0 && o.recAttrClr === 0 && !o.isIdmap && !o.isTmpcopyup;
  if (plain && Buffer.byteLength(o.data) <= MOUNT_DATA_MAX) {
    try {
      mount(m.source, dir, m.type, o.flags, o.data === '' ? null : o.data);
    } catch (e) {
      throw new TsrunError('Internal', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return;
  }
  const bind = o.isBind || m.type === 'bind';
  const args = [...(bind ? [] : ['-t', m.type]), ...(options.length > 0 ? ['-o', options.join(',')] : []), '--', m.source, dir];
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new TsrunError('Internal', `${what}: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`);
}

/**
 * Unmount the top mount on `dir`; a busy one is detached (umount -l: the kernel frees it once
 * unused). False when neither worked (nothing mounted there, or a real error): callers that must
 * know look at the mount table.
 */
export function unmountOne(dir: string): boolean {
  try {
    umount2(dir, 0);
    return true;
  } catch {
    try {
      umount2(dir, MNT_DETACH);
      return true;
    } catch {
      return false;
    }
  }
}
