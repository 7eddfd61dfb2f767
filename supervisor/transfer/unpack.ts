/*
 * Unpack a pulled (or loaded) image into a snapshotter, as containerd's unpacker does: one
 * committed snapshot per layer, named by the chain ID of the diff IDs so far, each on its
 * parent. A layer whose chain already exists is skipped ("Already exists"). Each layer is
 * extracted into a fresh active snapshot's upper dir with the same layer code the Diff
 * service's Apply uses; its diff ID must equal the config's rootfs.diff_ids entry, else the
 * active snapshot is removed and the unpack fails naming the layer.
 *
 * Labels written for the collector (containerd's): the manifest holds its config and layers
 * (gc.ref.content.config / .l.N), the config holds the top snapshot (gc.ref.snapshot.<sn>).
 */
import { createHash, randomBytes } from 'node:crypto';
import { TsrunError } from '../../spec/errors';
import type { ContentStore } from '../content/store';
import { applyLayer, layerReadStream } from '../diff/index';
import { applyTarget, LAYER_MEDIA_TYPES } from '../services/diff';
import type { Snapshots } from '../snapshots/local';
import type { Descriptor } from '../registry/index';

/** Chain IDs of `diffIds` (OCI image spec). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : `sha256:${createHash('sha256').update(`${out[out.length - 1]!} ${d}`).digest('hex')}`);
  return out;
}

/** What unpack needs. */
export interface UnpackTarget {
  readonly cs: ContentStore;
  readonly snapshots: Snapshots;
  readonly snapshotter: string;
  readonly ns: string;
  readonly lease: string;
  readonly warn: (message: string) => void;
}

/** Per-layer report: the layer was extracted, or its chain was already there. */
export type UnpackProgress = (layer: Descriptor, state: 'Extracting' | 'Pull complete' | 'Already exists') => void;

/** The diff IDs in an image config blob. */
export function diffIdsOf(cs: ContentStore, ns: string, config: Descriptor): string[] {
  let doc: { rootfs?: { diff_ids?: unknown } };
  try {
    doc = JSON.parse(cs.readAll(ns, config.digest).toString('utf8')) as typeof doc;
  } catch (e) {
    throw new TsrunError('InvalidArgument', `image config ${config.digest}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const ids = doc.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) throw new TsrunError('InvalidArgument', `image config ${config.digest}: rootfs.diff_ids is not a list of digests`);
  return ids as string[];
}

/**
 * Unpack `layers` (in order) under `config`'s diff IDs; returns the top chain ID. `arrived`, when
 * given, resolves once a layer's blob is in the content store: a pull unpacks each layer while
 * the later ones are still downloading, as containerd's unpacker does.
 */
export async function unpackLayers(
  t: UnpackTarget,
  config: Descriptor,
  layers: readonly Descriptor[],
  progress: UnpackProgress,
  arrived?: (layer: Descriptor) => Promise<void>,
): Promise<string> {
  const diffIds = diffIdsOf(t.cs, t.ns, config);
  if (diffIds.length !== layers.length) {
    throw new TsrunError('InvalidArgument', `image config ${config.digest}: ${diffIds.length} diff_ids for ${layers.length} layers in the manifest`);
  }
  const chains = chainIds(diffIds);
  let parent = '';
  for (const [i, layer] of layers.entries()) {
    const chain = chains[i]!;
    const exists = (() => {
      try {
        t.snapshots.stat(t.snapshotter, t.ns, chain);
        return true;
      } catch (e) {
        if (e instanceof TsrunError && e.code === 'NotFound') return false;
        throw e;
      }
    })();
    if (exists) {
      progress(layer, 'Already exists');
      parent = chain;
      continue;
    }
    if (!LAYER_MEDIA_TYPES.has(layer.mediaType)) throw new TsrunError('InvalidArgument', `unpack layer ${layer.digest}: unsupported media type ${JSON.stringify(layer.mediaType)}`);
    if (arrived !== undefined) await arrived(layer);
    const key = `extract-${randomBytes(6).toString('hex')} ${chain}`;
    const mounts = t.snapshots.prepare(t.snapshotter, t.ns, key, parent, {}, t.lease);
    try {
      progress(layer, 'Extracting');
      const { dir, whiteouts } = applyTarget(mounts);
      const input = layerReadStream(t.cs.blobPath(layer.digest));
      let r: { diffId: string };
      try {
        r = await applyLayer(input, dir, { mediaType: layer.mediaType, whiteouts, warn: t.warn });
      } finally {
        input.destroy();
      }
      if (r.diffId !== diffIds[i]) throw new TsrunError('InvalidArgument', `unpack layer ${layer.digest}: its content has diff ID ${r.diffId}, the config says ${diffIds[i]!}`);
      try {
        t.snapshots.commit(t.snapshotter, t.ns, chain, key, {}, t.lease);
      } catch (e) {
        // another unpack of the same chain won the race: theirs is as good as ours
        if (!(e instanceof TsrunError && e.code === 'AlreadyExists')) throw e;
        t.snapshots.remove(t.snapshotter, t.ns, key);
      }
      t.cs.update(t.ns, layer.digest, { 'containerd.io/uncompressed': r.diffId }, ['labels.containerd.io/uncompressed']);
    } catch (e) {
      try {
        t.snapshots.remove(t.snapshotter, t.ns, key);
      } catch {
        // committed already, or never made
      }
      throw e;
    }
    progress(layer, 'Pull complete');
    parent = chain;
  }
  return parent;
}

/** Label `manifest` to hold its config and layers, and `config` to hold the unpacked snapshot. */
export function labelForGc(cs: ContentStore, ns: string, manifest: Descriptor, config: Descriptor, layers: readonly Descriptor[], snapshotter: string, top: string | undefined): void {
  const m: Record<string, string> = { 'containerd.io/gc.ref.content.config': config.digest };
  layers.forEach((l, i) => (m[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
  cs.update(ns, manifest.digest, m, Object.keys(m).map((k) => `labels.${k}`));
  if (top !== undefined && top !== '') {
    const k = `containerd.io/gc.ref.snapshot.${snapshotter}`;
    cs.update(ns, config.digest, { [k]: top }, [`labels.${k}`]);
  }
}
