/*
 * Layer media types, decompression by media type, gzip for writing, and a digest-computing
 * passthrough. zstd layers need a decoder node 20's zlib does not have (it arrived in node 22.15
 * and 23.8); where zlib offers one it is used, otherwise the error names the media type.
 */
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { TsrunError } from '../../spec/errors';

export type Compression = 'none' | 'gzip' | 'zstd';

const BY_MEDIA_TYPE: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
};

/** How a layer of this media type is compressed; InvalidArgument for a type that is not a layer. */
export function compressionOf(mediaType: string): Compression {
  const c = BY_MEDIA_TYPE[mediaType];
  if (c === undefined) throw new TsrunError('InvalidArgument', `layer media type "${mediaType}": not a supported layer type`);
  return c;
}

/**
 * Output chunk of the gzip decoder. zlib's default (16 KiB) makes every 16 KiB of a layer one trip
 * through the tar reader, the digest and an async file write, and those trips, not inflating, were
 * most of an apply's CPU; 256 KiB cuts them sixteenfold (1 MiB gained little more), and the
 * extractor still holds only one chunk at a time.
 */
const GUNZIP_CHUNK = 256 << 10;

/**
 * Read size of a layer blob on its way to the decompressor. The file stream's default chunk is
 * small, and zlib hands on at most what one input chunk inflates to, so with incompressible data
 * (most of a big layer) every output chunk would be that small however large GUNZIP_CHUNK is; a
 * read as large as GUNZIP_CHUNK's output lets the gunzip fill whole chunks.
 */
const LAYER_READ_CHUNK = 1 << 20;

/** A stream of the layer blob at `file`, in chunks sized for applyLayer. */
export function layerReadStream(file: string): fs.ReadStream {
  return fs.createReadStream(file, { highWaterMark: LAYER_READ_CHUNK });
}

type ZstdFactory = () => Transform;

function zstdDecompressor(): ZstdFactory | undefined {
  const f = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;
  return typeof f === 'function' ? f : undefined;
}

/** A stream that turns the layer's bytes into the uncompressed tar. */
export function decompressor(mediaType: string): Transform {
  const c = compressionOf(mediaType);
  switch (c) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return zlib.createGunzip({ chunkSize: GUNZIP_CHUNK });
    case 'zstd': {
      const f = zstdDecompressor();
      if (f === undefined) {
        throw new TsrunError(
          'InvalidArgument',
          `layer media type "${mediaType}": zstd is not supported (node ${process.versions.node}'s zlib has no zstd decoder)`,
        );
      }
      return f();
    }
    default: {
      const unknown: never = c;
      throw new TsrunError('Internal', `layer compression ${String(unknown)}: not handled`);
    }
  }
}

/** gzip a layer stream (containerd's default level for layers it produces). */
export function gzipStream(input: Readable): Readable {
  const gz = zlib.createGzip({ level: zlib.constants.Z_DEFAULT_COMPRESSION });
  input.on('error', (e: Error) => gz.destroy(e));
  return input.pipe(gz);
}

/** A passthrough that hashes and counts what flows through it. */
export interface DigestStream extends Transform {
  /** "sha256:<hex>" once the stream has ended */
  digest(): string;
  size(): number;
}

/** A passthrough computing the sha256 digest and byte count of the data. */
export function digestStream(): DigestStream {
  const hash: Hash = createHash('sha256');
  let size = 0;
  let result: string | undefined;
  const t = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb: TransformCallback): void {
      result = `sha256:${hash.digest('hex')}`;
      cb();
    },
  }) as DigestStream;
  t.digest = () => {
    if (result === undefined) throw new TsrunError('Internal', 'digest of a layer stream asked for before it ended');
    return result;
  };
  t.size = () => size;
  return t;
}
