/*
 * `tsctl run` flags → an OCI runtime spec, docker's defaults on top of `defaultSpec`:
 *
 *   image   a rootfs directory (spec made from scratch) or an OCI bundle directory (its config.json
 *           is the base; root.path made absolute; CMD replaces process.args)
 *   process docker's 14 default capabilities (bounding, effective, permitted), no rlimits,
 *           noNewPrivileges false, env PATH + HOSTNAME (+ TERM=xterm with -t) then -e/--env-file
 *   linux   pid, ipc, uts, mount, network namespaces; cgroupsPath /<namespace>/<id>; containerd's
 *           device allow list; memory / cpu quota (period 100000) / pids limits; seccomp if given
 *   mounts  the default proc/dev/devpts/shm/mqueue/sysfs/cgroup set, then `-v` binds
 *           (rbind, rprivate, ro or rw)
 *
 * image containers: `image` is the container's snapshot mounted for the duration of create and
 * `fromImage` is set (never a bundle; root.path is "rootfs", tsrund mounts the snapshot there).
 *
 * Pure except for reading the bundle's config.json and the rootfs's /etc/passwd and /etc/group.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LinuxResources, Mount, Spec } from '../../spec';
// not the spec index: it brings zod's schemas, which tsctl's snapshot would then hold and every
// start deserialise, for the one case that parses a spec (a bundle's config.json, parseSpec)
import { defaultSpec } from '../../spec/default';
import { TsrunError } from '../../spec/errors';
import { idProblem } from '../../spec/ids';
import { resolveInRoot } from '../volumes/copy-up';

/** docker's default capability set (moby's oci/caps defaults, as listed in docker run's reference). */
export const DOCKER_CAPS: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A `-v host:container[:ro|rw]` bind. */
export interface Bind {
  readonly source: string;
  readonly destination: string;
  readonly readonly: boolean;
}

/** Everything `run` needs to make the spec. */
export interface RunConfig {
  readonly id: string;
  readonly namespace: string;
  /** the image directory as given (absolute) */
  readonly image: string;
  /** CMD after the image; empty: the bundle's args */
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly tty: boolean;
  readonly workdir?: string;
  readonly user?: string;
  readonly hostname?: string;
  readonly memory?: number;
  readonly cpus?: number;
  readonly pidsLimit?: number;
  readonly binds: readonly Bind[];
  readonly readonlyRootfs: boolean;
  /** a linux.seccomp object, or undefined for none */
  readonly seccomp?: unknown;
  readonly capAdd: readonly string[];
  readonly capDrop: readonly string[];
  /** `image` is an image's snapshot mounted for create, not a rootfs or bundle directory */
  readonly fromImage?: boolean;
}

/** Parse docker's size syntax ("64m", "1g", "512k", "100b", "1024") into bytes. */
export function parseBytes(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(text.trim());
  if (m === null) throw new TsrunError('InvalidArgument', `invalid ${flag} ${JSON.stringify(text)}: want a size like 64m or 1g`);
  const unit = (m[2] ?? '').toLowerCase();
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[unit] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}

/** Parse a `-v` value; only absolute host paths (no named volumes yet). */
export function parseBind(text: string): Bind {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3) throw new TsrunError('InvalidArgument', `invalid volume specification: ${JSON.stringify(text)}: want /host:/container[:ro|rw]`);
  const [source = '', destination = '', mode = 'rw'] = parts;
  if (!path.isAbsolute(source)) throw new TsrunError('InvalidArgument', `invalid volume specification: ${JSON.stringify(text)}: named volumes are not supported, the source must be an absolute path`);
  if (!path.isAbsolute(destination)) throw new TsrunError('InvalidArgument', `invalid volume specification: ${JSON.stringify(text)}: the destination must be an absolute path`);
  const modes = mode.split(',');
  for (const m of modes) {
    if (m !== 'ro' && m !== 'rw') throw new TsrunError('InvalidArgument', `invalid volume specification: ${JSON.stringify(text)}: invalid mode ${JSON.stringify(m)}`);
  }
  return { source, destination, readonly: modes.includes('ro') };
}

/** Parse an --env-file: KEY=VALUE lines, `#` comments and blanks skipped, a bare KEY taken from `hostEnv`. */
export function parseEnvFile(text: string, hostEnv: Readonly<Record<string, string | undefined>>): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\s+/, '').replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) continue;
    out.push(...expandEnv([line], hostEnv));
  }
  return out;
}

/** `-e KEY` (no `=`) means the caller's value of KEY, or nothing when it is unset (docker's rule). */
export function expandEnv(entries: readonly string[], hostEnv: Readonly<Record<string, string | undefined>>): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.startsWith('=')) throw new TsrunError('InvalidArgument', `invalid environment variable: ${e}`);
    if (e.includes('=')) out.push(e);
    else if (hostEnv[e] !== undefined) out.push(`${e}=${hostEnv[e]}`);
  }
  return out;
}

/** Merge env lists: later entries replace earlier ones of the same name, order of first appearance kept. */
export function mergeEnv(...lists: ReadonlyArray<readonly string[]>): string[] {
  const map = new Map<string, string>();
  for (const l of lists) for (const e of l) map.set(e.split('=', 1)[0]!, e);
  return [...map.values()];
}

function readLines(file: string): string[][] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/** Resolve `-u user[:group]` against the rootfs's /etc/passwd and /etc/group, as docker does. */
export function resolveUser(rootfs: string, spec: string): { uid: number; gid: number; additionalGids?: number[] } {
  const [u = '', g] = spec.split(':', 2);
  // symlinks in the image resolve inside its rootfs, never to the host's files
  const passwd = readLines(resolveInRoot(rootfs, '/etc/passwd'));
  const groups = readLines(resolveInRoot(rootfs, '/etc/group'));
  const isNum = (s: string): boolean => /^\d+$/.test(s);
  let uid: number;
  let gid = 0;
  let name: string | undefined;
  const entry = passwd.find((p) => (isNum(u) ? p[2] === u : p[0] === u));
  if (entry !== undefined) {
    uid = Number(entry[2]);
    gid = Number(entry[3] ?? 0);
    name = entry[0];
  } else if (isNum(u)) {
    uid = Number(u);
  } else {
    throw new TsrunError('NotFound', `unable to find user ${u}: no matching entries in passwd file`);
  }
  if (g !== undefined && g !== '') {
    if (isNum(g)) gid = Number(g);
    else {
      const ge = groups.find((x) => x[0] === g);
      if (ge === undefined) throw new TsrunError('NotFound', `unable to find group ${g}: no matching entries in group file`);
      gid = Number(ge[2]);
    }
  }
  const extra = name === undefined ? [] : groups.filter((x) => (x[3] ?? '').split(',').includes(name)).map((x) => Number(x[2]));
  const additional = [...new Set(extra.filter((x) => x !== gid))];
  // Numbers from the flag or from the image's passwd/group files alike: 4294967295 would mean
  // "leave unchanged" to setresuid(2) and run the process as root (spec/ids.ts).
  const problem = idProblem(uid, 'uid') ?? idProblem(gid, 'gid') ?? additional.map((x) => idProblem(x, 'gid')).find((p) => p !== undefined);
  if (problem !== undefined) throw new TsrunError('InvalidArgument', `-u ${spec}: ${problem}`);
  return additional.length > 0 ? { uid, gid, additionalGids: additional } : { uid, gid };
}

/** containerd's default device allow list (after deny-all), plus docker's mknod rules. */
const DEVICES = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

/** The resources part of the spec for the limits given (also what `update` sends). */
export function resourcesFor(l: { memory?: number | undefined; cpus?: number | undefined; pidsLimit?: number | undefined }): LinuxResources {
  const r: Record<string, unknown> = {};
  if (l.memory !== undefined) r['memory'] = { limit: l.memory };
  if (l.cpus !== undefined) {
    if (!(l.cpus > 0)) throw new TsrunError('InvalidArgument', `invalid --cpus ${l.cpus}: must be positive`);
    r['cpu'] = { quota: Math.round(l.cpus * 100_000), period: 100_000 };
  }
  if (l.pidsLimit !== undefined) r['pids'] = { limit: l.pidsLimit };
  return r as LinuxResources;
}

/** Is `dir` an OCI bundle (has config.json) rather than a plain rootfs? */
export function isBundle(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'config.json'));
}

/** Build the container's spec. */
export function buildSpec(cfg: RunConfig): Spec {
  let spec: Spec;
  let rootfs: string;
  if (cfg.fromImage !== true && isBundle(cfg.image)) {
    const file = path.join(cfg.image, 'config.json');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { parseSpec } = require('../../spec/parse') as typeof import('../../spec/parse');
    spec = parseSpec(fs.readFileSync(file, 'utf8'), file);
    rootfs = path.resolve(cfg.image, spec.root?.path ?? 'rootfs');
    spec.root = { ...(spec.root ?? {}), path: rootfs };
  } else {
    spec = defaultSpec({});
    rootfs = cfg.image;
    spec.root = { path: rootfs, readonly: false };
    const p = spec.process!;
    p.capabilities = { bounding: [...DOCKER_CAPS], effective: [...DOCKER_CAPS], permitted: [...DOCKER_CAPS] };
    delete p.rlimits;
    p.noNewPrivileges = false;
    p.env = [DEFAULT_PATH];
    p.args = [];
    spec.mounts = (spec.mounts ?? []).map((m) => (m.destination === '/dev/shm' ? { ...m, options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] } : m));
    spec.linux = { ...spec.linux, resources: { devices: DEVICES as never } };
  }
  if (cfg.readonlyRootfs) spec.root = { ...spec.root, readonly: true };
  if (cfg.fromImage === true) spec.root = { ...spec.root, path: 'rootfs' };
  const p = spec.process ?? { cwd: '/', args: [], user: { uid: 0, gid: 0 } };
  spec.process = p;
  if (cfg.args.length > 0) p.args = [...cfg.args];
  if (p.args === undefined || p.args.length === 0) throw new TsrunError('InvalidArgument', 'no command specified');
  const hostname = cfg.hostname ?? cfg.id.slice(0, 12);
  spec.hostname = hostname;
  p.terminal = cfg.tty;
  p.env = mergeEnv([DEFAULT_PATH], p.env ?? [], [`HOSTNAME=${hostname}`], cfg.tty ? ['TERM=xterm'] : [], cfg.env);
  if (cfg.workdir !== undefined) {
    if (!path.isAbsolute(cfg.workdir)) throw new TsrunError('InvalidArgument', `the working directory '${cfg.workdir}' is invalid, it needs to be an absolute path`);
    p.cwd = cfg.workdir;
  }
  if (cfg.user !== undefined) p.user = resolveUser(rootfs, cfg.user);
  if (cfg.capAdd.length > 0 || cfg.capDrop.length > 0) {
    const norm = (c: string): string => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);
    const drop = new Set(cfg.capDrop.map(norm));
    const caps = [...new Set([...(p.capabilities?.bounding ?? DOCKER_CAPS), ...cfg.capAdd.map(norm)])].filter((c) => !drop.has(c) && !drop.has('CAP_ALL'));
    p.capabilities = { bounding: caps, effective: [...caps], permitted: [...caps] };
  }
  const mounts: Mount[] = [...(spec.mounts ?? [])];
  for (const b of cfg.binds) {
    const i = mounts.findIndex((m) => m.destination === b.destination);
    if (i >= 0) mounts.splice(i, 1);
    mounts.push({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', 'rprivate', b.readonly ? 'ro' : 'rw'] });
  }
  spec.mounts = mounts;
  const linux = spec.linux ?? {};
  linux.cgroupsPath = `/${cfg.namespace}/${cfg.id}`;
  linux.resources = { ...(linux.resources ?? {}), ...resourcesFor(cfg) };
  if (cfg.seccomp !== undefined) (linux as Record<string, unknown>)['seccomp'] = cfg.seccomp;
  spec.linux = linux;
  return spec;
}
