/*
 * tsrun.services.volumes.v1.Volumes: decode → the volume logic (volumes/local.ts) → response.
 * Filters (docker's): name=, label=KEY[=VALUE], dangling=true|false, anonymous=true|false.
 */
import { TsrunError } from '../../spec/errors';
import type { ServiceImpl } from '../grpc/server';
import type { VolumeView, Volumes } from '../volumes/local';

function toWire(v: VolumeView, size?: number): Record<string, unknown> {
  return {
    name: v.name,
    driver: 'local',
    mountpoint: v.mountpoint,
    labels: v.labels,
    options: v.options,
    anonymous: v.anonymous,
    createdAt: v.createdAt,
    usedBy: v.usedBy,
    ...(size !== undefined ? { size } : {}),
  };
}

/** A predicate for docker's volume filters. */
export function volumeFilter(filters: readonly string[]): (v: VolumeView) => boolean {
  const tests = filters.map((f) => {
    const eq = f.indexOf('=');
    if (eq < 0) throw new TsrunError('InvalidArgument', `invalid filter ${JSON.stringify(f)}: want KEY=VALUE`);
    const key = f.slice(0, eq);
    const value = f.slice(eq + 1);
    switch (key) {
      case 'name':
        return (v: VolumeView) => v.name.includes(value);
      case 'label': {
        const [k = '', want] = value.split(/=(.*)/s, 2);
        return (v: VolumeView) => Object.hasOwn(v.labels, k) && (want === undefined || v.labels[k] === want);
      }
      case 'dangling':
        if (value !== 'true' && value !== 'false' && value !== '1' && value !== '0') {
          throw new TsrunError('InvalidArgument', `invalid filter 'dangling=${value}'`);
        }
        return (v: VolumeView) => (v.usedBy.length === 0) === (value === 'true' || value === '1');
      case 'anonymous':
        return (v: VolumeView) => v.anonymous === (value === 'true' || value === '1');
      default:
        throw new TsrunError('InvalidArgument', `invalid filter '${key}'`);
    }
  });
  return (v) => tests.every((t) => t(v));
}

/** The Volumes service. */
export function volumesService(volumes: Volumes): ServiceImpl {
  return {
    service: 'tsrun.services.volumes.v1.Volumes',
    unary: {
      Create: (req: { name: string; labels: Record<string, string>; options: Record<string, string>; anonymous: boolean }) => ({
        volume: toWire(volumes.create(req.name, { ...req.labels }, { ...req.options }, req.anonymous)),
      }),
      Get: (req: { name: string; size: boolean }) => ({
        volume: toWire(volumes.get(req.name), req.size ? volumes.size(req.name) : undefined),
      }),
      List: (req: { filters: string[] }) => {
        const keep = volumeFilter(req.filters);
        return { volumes: volumes.list().filter(keep).map((v) => toWire(v)) };
      },
      Remove: (req: { name: string; force: boolean }) => {
        volumes.remove(req.name, req.force);
        return {};
      },
      Prune: (req: { all: boolean; filters: string[] }) => {
        const match = volumeFilter(req.filters);
        const r = volumes.prune(req.all, (v) => !match(v));
        return { deleted: r.deleted, spaceReclaimed: r.reclaimed };
      },
      Prepare: async (req: { name: string; anonymous: boolean; labels: Record<string, string>; copyRootfs: string; copyPath: string }) => ({
        volume: toWire(
          await volumes.prepare(req.name, {
            anonymous: req.anonymous,
            labels: { ...req.labels },
            ...(req.copyRootfs !== '' ? { copyFrom: { rootfs: req.copyRootfs, path: req.copyPath } } : {}),
          }),
        ),
      }),
    },
  };
}
