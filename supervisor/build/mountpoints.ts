/*
 * A container's layer minus the files the runtime made as mount points: /etc/hostname, /etc/hosts,
 * /etc/resolv.conf (bind-mounted by the network set-up) and /.dockerenv, when they are empty
 * regular files. docker keeps these in a hidden "init" layer under the container's, so `docker
 * commit` never sees them; our containers have one layer, so commit drops them from the diff.
 * A directory written only because such a file was in it goes too.
 *
 *   Content.Read → gunzip → readTar → (drop) → encodeHeader/body → sha256 (diff id) → gzip
 *                → sha256 (digest) → Content.Write in chunks → commit with the uncompressed label
 *
 * Streamed both ways: a large layer is never held in memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import type { TsrundClient } from '../client';
import { readTar } from '../diff/tar-reader';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from '../diff/tar-header';
import { isRpc, type Desc } from './layer';

const MOUNT_POINTS = new Set(['etc/hostname', 'etc/hosts', 'etc/resolv.conf', '.dockerenv']);

const clean = (name: string): string => name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
const isMountPoint = (h: TarHeader): boolean => h.type === 'file' && h.size === 0 && MOUNT_POINTS.has(clean(h.name));

function blob(client: TsrundClient, digest: string): AsyncIterable<Buffer> {
  const s = client.stream<{ data: Uint8Array }>('Content', 'Read', { digest });
  return Readable.from(
    (async function* () {
      for await (const m of s.messages) yield Buffer.from(m.data);
    })(),
  ).pipe(zlib.createGunzip());
}

async function hasMountPoints(client: TsrundClient, digest: string): Promise<boolean> {
  let found = false;
  for await (const e of readTar(blob(client, digest))) {
    if (isMountPoint(e.header)) found = true;
    for await (const chunk of e.body) void chunk;
  }
  return found;
}

/**
 * The filtered tar: mount points dropped. Directories are held back until something under them
 * stays; one left with nothing under it is kept unless a mount point was in it (its mtime changed
 * only because the runtime made the file).
 */
async function* filtered(client: TsrundClient, digest: string, counts: { kept: number }): AsyncGenerator<Buffer> {
  const held: Array<{ h: TarHeader; name: string; emitted: boolean; mountPoint: boolean }> = [];
  const emitUpTo = function* (n: number): Generator<Buffer> {
    for (const d of held.slice(0, n)) {
      if (d.emitted) continue;
      d.emitted = true;
      counts.kept++;
      yield encodeHeader(d.h);
    }
  };
  const popUntil = function* (name: string | undefined): Generator<Buffer> {
    while (held.length > 0 && (name === undefined || !name.startsWith(`${held[held.length - 1]!.name}/`))) {
      const top = held[held.length - 1]!;
      if (!top.emitted && !top.mountPoint) yield* emitUpTo(held.length);
      held.pop();
    }
  };
  for await (const e of readTar(blob(client, digest))) {
    const h = e.header;
    const name = clean(h.name);
    yield* popUntil(name);
    if (isMountPoint(h)) {
      for (const d of held) d.mountPoint = true;
      for await (const c of e.body) void c;
      continue;
    }
    if (h.type === 'dir') {
      held.push({ h, name, emitted: false, mountPoint: false });
      continue;
    }
    yield* emitUpTo(held.length);
    counts.kept++;
    yield encodeHeader(h);
    for await (const c of e.body) yield c;
    if (h.type === 'file' && h.size > 0) yield padding(h.size);
  }
  yield* popUntil(undefined);
  yield END_OF_ARCHIVE;
}

/**
 * The layer without runtime mount points (the same layer when it has none); undefined when
 * nothing else is left.
 */
export async function dropMountPoints(client: TsrundClient, layer: { layer: Desc; diffId: string }): Promise<{ layer: Desc; diffId: string } | undefined> {
  if (!(await hasMountPoints(client, layer.layer.digest))) return layer;
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  const counts = { kept: 0 };
  const tar = Readable.from(filtered(client, layer.layer.digest, counts));
  const gz = tar.pipe(zlib.createGzip());
  tar.on('error', (e: Error) => gz.destroy(e));
  tar.on('data', (c: Buffer) => diffHash.update(c));
  const ref = `tsctl-commit-${randomBytes(8).toString('hex')}`;
  const w = client.duplex<{ digest: string }>('Content', 'Write');
  const answers = (async () => {
    for await (const m of w.messages) void m;
  })();
  answers.catch(() => undefined);
  let offset = 0;
  try {
    for await (const chunk of gz as AsyncIterable<Buffer>) {
      blobHash.update(chunk);
      await w.write({ action: 1, ref, offset, data: chunk });
      offset += chunk.length;
    }
    const digest = `sha256:${blobHash.digest('hex')}`;
    const diffId = `sha256:${diffHash.digest('hex')}`;
    if (counts.kept === 0) {
      w.cancel();
      await client.call('Content', 'Abort', { ref }).catch(() => undefined);
      return undefined;
    }
    await w.write({ action: 2, ref, offset, total: offset, expected: digest, labels: { 'containerd.io/uncompressed': diffId } });
    w.end();
    try {
      await answers;
    } catch (e) {
      if (!isRpc(e, 'AlreadyExists')) throw e;
    }
    return { layer: { mediaType: layer.layer.mediaType, digest, size: offset }, diffId };
  } catch (e) {
    w.cancel();
    await client.call('Content', 'Abort', { ref }).catch(() => undefined);
    throw e;
  }
}
