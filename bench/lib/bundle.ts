/*
 * Busybox bundles shared by every runtime: one rootfs (scripts/make-busybox-rootfs.sh) and a
 * config.json per program. The config is tsrun's default spec with ociVersion 1.0.2-dev, which
 * runc 1.1 and crun 1.8 accept (crun 1.8 refuses "1.2.0" with "unknown version specified").
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What a bundle's container does. */
export interface BundleOptions {
  readonly args: readonly string[];
  /** linux.resources.memory.limit in bytes. */
  readonly memoryLimit?: number;
  /** linux.resources.pids.limit. */
  readonly pidsLimit?: number;
}

/** Make the shared rootfs under `dir`; returns its path. */
export function makeRootfs(repo: string, dir: string): string {
  const rootfs = path.join(dir, 'rootfs');
  const r = spawnSync('bash', [path.join(repo, 'scripts', 'make-busybox-rootfs.sh'), rootfs], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make-busybox-rootfs.sh ${rootfs}: ${r.stderr.trim()}`);
  return rootfs;
}

/** Write bundle `name` under `dir` from `baseConfig` (tsrun spec output); returns the bundle path. */
export function makeBundle(dir: string, name: string, baseConfig: string, rootfs: string, opts: BundleOptions): string {
  const bundle = path.join(dir, name);
  fs.mkdirSync(bundle, { recursive: true });
  const c = JSON.parse(baseConfig) as {
    ociVersion: string;
    root: { path: string; readonly?: boolean };
    process: { terminal?: boolean; args: string[] };
    linux: { resources?: { memory?: { limit?: number }; pids?: { limit: number } } };
  };
  c.ociVersion = '1.0.2-dev';
  c.root.path = rootfs;
  c.process.terminal = false;
  c.process.args = [...opts.args];
  const resources = (c.linux.resources ??= {});
  if (opts.memoryLimit !== undefined) resources.memory = { ...resources.memory, limit: opts.memoryLimit };
  if (opts.pidsLimit !== undefined) resources.pids = { limit: opts.pidsLimit };
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(c, null, 2));
  return bundle;
}
