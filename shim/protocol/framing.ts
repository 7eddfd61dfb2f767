/*
 * Length-prefixed framing over a byte stream:
 *
 *   +----------------------+---------------------------+
 *   | u32 big-endian: len  | len bytes: a Frame (proto) |
 *   +----------------------+---------------------------+
 *
 * A frame longer than MAX_FRAME_BYTES is a protocol error (the peer is not a shim client).
 */
import { TsrunError } from '../../spec/errors';

/** Largest frame either side accepts. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Prefix one frame's bytes with its length. */
export function frameBytes(body: Uint8Array): Buffer {
  if (body.length > MAX_FRAME_BYTES) throw new TsrunError('InvalidArgument', `shim frame of ${body.length} bytes: larger than ${MAX_FRAME_BYTES}`);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/** Splits a byte stream into frame bodies; feed it chunks as they arrive. */
export interface FrameReader {
  /** Add bytes; returns every complete frame body now available. Throws on an oversized frame. */
  push(chunk: Uint8Array): Buffer[];
  /** Bytes held that do not yet form a frame. */
  pending(): number;
}

/** A new FrameReader. */
export function frameReader(): FrameReader {
  let buf = Buffer.alloc(0);
  return {
    push(chunk) {
      buf = buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([buf, chunk]);
      const out: Buffer[] = [];
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (len > MAX_FRAME_BYTES) throw new TsrunError('InvalidArgument', `shim frame of ${len} bytes: larger than ${MAX_FRAME_BYTES}`);
        if (buf.length < 4 + len) break;
        out.push(Buffer.from(buf.subarray(4, 4 + len)));
        buf = buf.subarray(4 + len);
      }
      return out;
    },
    pending: () => buf.length,
  };
}
