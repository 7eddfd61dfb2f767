/*
 * `run`'s storage flags → OCI mounts, docker's syntax and defaults:
 *
 *   -v /host:/ctr[:ro|rw]           bind (the host directory is made if missing, as docker does)
 *   -v NAME:/ctr[:ro|rw|nocopy]     named volume (made if missing; copy-up unless nocopy)
 *   -v /ctr                         anonymous volume (a random 64-hex name; `rm -v` / `--rm` remove it)
 *   --mount type=bind|volume|tmpfs,source=…,target=…,readonly,volume-nocopy,volume-label=K=V,
 *           bind-propagation=…,tmpfs-size=…,tmpfs-mode=…  (src/dst/destination/ro aliases too)
 *   --tmpfs /ctr[:opts]             tmpfs, noexec,nosuid,nodev unless opts say otherwise
 *   --volumes-from CONTAINER[:ro|rw] every bind and volume of another container
 *
 * Volumes are prepared by tsrund (Volumes.Prepare): it owns <root>/volumes and does the copy-up
 * from the container's rootfs. A later mount on the same destination replaces an earlier one, and
 * mounts are ordered parents first (docker sorts by depth too).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Mount } from '../../spec';
import { TsrunError } from '../../spec/errors';
import type { TsrundClient } from '../client';
import { findContainer } from './model';
import { parseBytes } from './spec';

/** One storage request from the flags, before volumes are resolved. */
export type MountRequest =
  | { kind: 'bind'; source: string; target: string; readonly: boolean; create: boolean; propagation: string }
  | { kind: 'volume'; name: string; anonymous: boolean; target: string; readonly: boolean; copy: boolean; labels: Record<string, string> }
  | { kind: 'tmpfs'; target: string; options: string[] }
  | { kind: 'from'; container: string; mode: 'ro' | 'rw' | '' };

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

function bad(flag: string, text: string, why: string): TsrunError {
  return new TsrunError('InvalidArgument', `invalid ${flag} ${JSON.stringify(text)}: ${why}`);
}

function anonymousName(): string {
  return randomBytes(32).toString('hex');
}

function checkTarget(flag: string, text: string, target: string): void {
  if (!path.isAbsolute(target)) throw bad(flag, text, `the destination ${JSON.stringify(target)} must be an absolute path`);
  if (path.normalize(target) === '/') throw bad(flag, text, 'the destination cannot be /');
}

/** Parse one `-v` value. */
export function parseVolumeFlag(text: string): MountRequest {
  const parts = text.split(':');
  if (parts.length === 1) {
    checkTarget('volume', text, text);
    return { kind: 'volume', name: anonymousName(), anonymous: true, target: text, readonly: false, copy: true, labels: {} };
  }
  if (parts.length > 3) throw bad('volume', text, 'want SOURCE:/container[:OPTIONS]');
  const [source = '', target = '', opts = ''] = parts;
  checkTarget('volume', text, target);
  const modes = opts === '' ? [] : opts.split(',');
  let readonly = false;
  let copy = true;
  let propagation = 'rprivate';
  for (const m of modes) {
    if (m === 'ro') readonly = true;
    else if (m === 'rw') readonly = false;
    else if (m === 'nocopy') copy = false;
    else if (PROPAGATIONS.includes(m)) propagation = m;
    else if (m === 'z' || m === 'Z') continue; // SELinux relabel requests: nothing to do without SELinux
    else throw bad('volume', text, `invalid mode ${JSON.stringify(m)}`);
  }
  if (path.isAbsolute(source)) return { kind: 'bind', source, target, readonly, create: true, propagation };
  if (source === '') throw bad('volume', text, 'empty source');
  if (!VOLUME_NAME.test(source)) throw bad('volume', text, `"${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  return { kind: 'volume', name: source, anonymous: false, target, readonly, copy, labels: {} };
}

/** Parse one `--mount` value (comma-separated key=value fields, docker's names). */
export function parseMountFlag(text: string): MountRequest {
  const f = new Map<string, string>();
  const labels: Record<string, string> = {};
  for (const field of text.split(',')) {
    const [k = '', v] = field.split(/=(.*)/s, 2);
    const key = k.trim().toLowerCase();
    if (key === 'volume-label') {
      const [lk = '', lv = ''] = (v ?? '').split(/=(.*)/s, 2);
      labels[lk] = lv;
      continue;
    }
    f.set(key, v ?? 'true');
  }
  const type = f.get('type') ?? 'volume';
  const target = f.get('target') ?? f.get('dst') ?? f.get('destination') ?? '';
  const source = f.get('source') ?? f.get('src') ?? '';
  const ro = f.get('readonly') ?? f.get('ro') ?? 'false';
  if (!['true', 'false', '1', '0'].includes(ro)) throw bad('--mount', text, `readonly=${ro}: want true or false`);
  const readonly = ro === 'true' || ro === '1';
  if (target === '') throw bad('--mount', text, 'target is required');
  checkTarget('--mount', text, target);
  const known = new Set(['type', 'target', 'dst', 'destination', 'source', 'src', 'readonly', 'ro', 'volume-nocopy', 'bind-propagation', 'tmpfs-size', 'tmpfs-mode', 'volume-driver']);
  for (const k of f.keys()) if (!known.has(k)) throw bad('--mount', text, `unexpected key '${k}'`);
  switch (type) {
    case 'bind': {
      if (!path.isAbsolute(source)) throw bad('--mount', text, 'a bind mount needs an absolute source');
      const propagation = f.get('bind-propagation') ?? 'rprivate';
      if (!PROPAGATIONS.includes(propagation)) throw bad('--mount', text, `invalid bind-propagation ${JSON.stringify(propagation)}`);
      return { kind: 'bind', source, target, readonly, create: false, propagation };
    }
    case 'volume': {
      const driver = f.get('volume-driver') ?? 'local';
      if (driver !== 'local') throw bad('--mount', text, `volume driver ${JSON.stringify(driver)}: only local`);
      if (source !== '' && !VOLUME_NAME.test(source)) throw bad('--mount', text, `invalid volume name ${JSON.stringify(source)}`);
      const nocopy = f.get('volume-nocopy') ?? 'false';
      return { kind: 'volume', name: source === '' ? anonymousName() : source, anonymous: source === '', target, readonly, copy: !(nocopy === 'true' || nocopy === '1'), labels };
    }
    case 'tmpfs': {
      if (source !== '') throw bad('--mount', text, 'a tmpfs mount takes no source');
      const options = ['nosuid', 'nodev', 'noexec'];
      const size = f.get('tmpfs-size');
      if (size !== undefined) options.push(`size=${parseBytes(size, 'tmpfs-size')}`);
      const mode = f.get('tmpfs-mode');
      if (mode !== undefined) {
        if (!/^[0-7]{1,4}$/.test(mode)) throw bad('--mount', text, `invalid tmpfs-mode ${JSON.stringify(mode)}`);
        options.push(`mode=${mode}`);
      }
      if (readonly) options.push('ro');
      return { kind: 'tmpfs', target, options };
    }
    default:
      throw bad('--mount', text, `invalid mount type ${JSON.stringify(type)}: want bind, volume or tmpfs`);
  }
}

/** Parse one `--tmpfs` value: /path[:opt,opt…] (docker's defaults noexec,nosuid,nodev). */
export function parseTmpfsFlag(text: string): MountRequest {
  const i = text.indexOf(':');
  const target = i < 0 ? text : text.slice(0, i);
  checkTarget('--tmpfs', text, target);
  const given = i < 0 ? [] : text.slice(i + 1).split(',').filter((o) => o !== '');
  const allowed = /^(ro|rw|exec|noexec|suid|nosuid|dev|nodev|size=\d+[kmg%]?|mode=[0-7]{1,4}|uid=\d+|gid=\d+|nr_inodes=\d+[kmg]?)$/;
  for (const o of given) if (!allowed.test(o)) throw bad('--tmpfs', text, `unsupported option ${JSON.stringify(o)}`);
  const opposite: Record<string, string> = { exec: 'noexec', suid: 'nosuid', dev: 'nodev' };
  const defaults = ['noexec', 'nosuid', 'nodev'].filter((d) => !given.some((g) => opposite[g] === d));
  return { kind: 'tmpfs', target, options: [...defaults, ...given] };
}

/** Parse one `--volumes-from` value. */
export function parseVolumesFrom(text: string): MountRequest {
  const [container = '', mode = ''] = text.split(':', 2);
  if (container === '') throw bad('--volumes-from', text, 'no container');
  if (mode !== '' && mode !== 'ro' && mode !== 'rw') throw bad('--volumes-from', text, `invalid mode ${JSON.stringify(mode)}`);
  return { kind: 'from', container, mode: mode as 'ro' | 'rw' | '' };
}

function bindMount(source: string, target: string, readonly: boolean, propagation = 'rprivate'): Mount {
  return { destination: target, type: 'bind', source, options: ['rbind', propagation, readonly ? 'ro' : 'rw'] };
}

/** Turn the requests into mounts: volumes prepared by tsrund, binds checked, other containers read. */
export async function resolveMounts(client: TsrundClient, requests: readonly MountRequest[], rootfs: string): Promise<Mount[]> {
  const out: Mount[] = [];
  for (const r of requests) {
    switch (r.kind) {
      case 'bind':
        if (!fs.existsSync(r.source)) {
          if (!r.create) throw new TsrunError('InvalidArgument', `invalid mount config for type "bind": bind source path does not exist: ${r.source}`);
          fs.mkdirSync(r.source, { recursive: true });
        }
        out.push(bindMount(r.source, r.target, r.readonly, r.propagation));
        break;
      case 'volume': {
        const res = await client.call<{ volume: { mountpoint: string } }>('Volumes', 'Prepare', {
          name: r.name,
          anonymous: r.anonymous,
          labels: r.labels,
          ...(r.copy ? { copyRootfs: rootfs, copyPath: r.target } : {}),
        });
        out.push(bindMount(res.volume.mountpoint, r.target, r.readonly));
        break;
      }
      case 'tmpfs':
        out.push({ destination: r.target, type: 'tmpfs', source: 'tmpfs', options: r.options });
        break;
      case 'from': {
        const c = await findContainer(client, r.container);
        const mounts = ((c.spec['mounts'] ?? []) as Mount[]).filter((m) => m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind'));
        for (const m of mounts) {
          const opts = (m.options ?? []).filter((o) => r.mode === '' || (o !== 'ro' && o !== 'rw'));
          out.push({ ...m, options: r.mode === '' ? opts : [...opts, r.mode] });
        }
        break;
      }
      default: {
        const never: never = r;
        throw new TsrunError('Internal', `mount request ${JSON.stringify(never)}: not handled`);
      }
    }
  }
  return out;
}

/** The spec's mounts with the user's added: same destination replaced, parents before children. */
export function mergeMounts(base: readonly Mount[], user: readonly Mount[]): Mount[] {
  const dests = new Set(user.map((m) => path.normalize(m.destination)));
  const byDest = new Map<string, Mount>();
  for (const m of user) byDest.set(path.normalize(m.destination), m);
  const kept = base.filter((m) => !dests.has(path.normalize(m.destination)));
  const depth = (m: Mount): number => path.normalize(m.destination).split('/').filter((c) => c !== '').length;
  const added = [...byDest.values()].map((m, i) => ({ m, i })).sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i).map((x) => x.m);
  return [...kept, ...added];
}

/** `rm -v` / `run --rm`: remove the anonymous volumes only this (now removed) container used. */
export async function removeAnonymousVolumes(client: TsrundClient, mounts: readonly Mount[]): Promise<string[]> {
  const sources = new Set(mounts.filter((m) => m.source !== undefined).map((m) => m.source as string));
  // only ask when a mount looks like a volume: a daemon without the Volumes service (containerd) still works
  if (![...sources].some((src) => /\/volumes\/[^/]+\/_data$/.test(src))) return [];
  const { volumes } = await client.call<{ volumes: Array<{ name: string; mountpoint: string; anonymous: boolean; usedBy: string[] }> }>('Volumes', 'List', { filters: [] });
  const removed: string[] = [];
  for (const v of volumes) {
    if (!v.anonymous || !sources.has(v.mountpoint) || v.usedBy.length > 0) continue;
    await client.call('Volumes', 'Remove', { name: v.name });
    removed.push(v.name);
  }
  return removed;
}
