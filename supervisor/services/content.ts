/*
 * gRPC adapter for containerd.services.content.v1.Content over content/store.ts, including the
 * Write stream's stat/write/commit protocol as containerd's server speaks it:
 *
 *   first message names the ref → the ingest is opened (locked: a second writer gets Unavailable)
 *   STAT            → offset, total, digest so far, started/updated
 *   WRITE/COMMIT    → `offset` must be 0 (restart: truncate) or the current offset (OutOfRange);
 *                     data is appended; COMMIT then verifies size and digest and moves the blob in
 *   each request    → one answer; the stream ends when the client closes its side
 */
import * as grpc from '@grpc/grpc-js';
import { TsrunError } from '../../spec/errors';
import type { ContentStore, IngestStatus } from '../content/store';
import type { Exchange } from '../events/exchange';
import { RpcStatus, type ServiceImpl } from '../grpc/server';
import type { Int64 } from '../proto/index';
import type { ContentRecord } from '../store/images';

/** An int64 from protobufjs (number or Long) as a number. */
export function int64(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function infoToWire(c: ContentRecord): Record<string, unknown> {
  return { digest: c.digest, size: c.size, createdAt: c.createdAt, updatedAt: c.updatedAt, labels: c.labels };
}

function statusToWire(s: IngestStatus): Record<string, unknown> {
  return { startedAt: s.startedAt, updatedAt: s.updatedAt, ref: s.ref, offset: s.offset, total: s.total, expected: s.expected };
}

interface WriteRequest {
  action: number;
  ref: string;
  total: Int64;
  expected: string;
  offset: Int64;
  data: Uint8Array;
  labels: Record<string, string>;
}

const STAT = 0;
const COMMIT = 2;

/** containerd.services.content.v1.Content */
export function contentService(cs: ContentStore, events: Exchange): ServiceImpl {
  return {
    service: 'containerd.services.content.v1.Content',
    unary: {
      Info: (req: { digest: string }, ctx) => ({ info: infoToWire(cs.info(ctx.namespace(), req.digest)) }),
      Update: (req: { info: { digest: string; labels: Record<string, string> } | null; updateMask: { paths: string[] } | null }, ctx) => ({
        info: infoToWire(cs.update(ctx.namespace(), req.info?.digest ?? '', { ...(req.info?.labels ?? {}) }, req.updateMask?.paths ?? [])),
      }),
      Delete: (req: { digest: string }, ctx) => {
        const ns = ctx.namespace();
        cs.delete(ns, req.digest);
        events.publish(ns, '/content/delete', 'containerd.events.ContentDelete', { digest: req.digest });
        return {};
      },
      Status: (req: { ref: string }, ctx) => ({ status: statusToWire(cs.status(ctx.namespace(), req.ref)) }),
      ListStatuses: (req: { filters: string[] }, ctx) => ({ statuses: cs.listStatuses(ctx.namespace(), req.filters).map(statusToWire) }),
      Abort: (req: { ref: string }, ctx) => {
        cs.abort(ctx.namespace(), req.ref);
        return {};
      },
    },
    stream: {
      List: async (req: { filters: string[] }, ctx, write) => {
        const all = cs.list(ctx.namespace(), req.filters).map(infoToWire);
        // containerd sends batches of up to 100 infos per message
        for (let i = 0; i < all.length; i += 100) write({ info: all.slice(i, i + 100) });
      },
      Read: async (req: { digest: string; offset: Int64; size: Int64 }, ctx, write) => {
        for await (const chunk of cs.read(ctx.namespace(), req.digest, int64(req.offset), int64(req.size))) {
          if (ctx.cancelled) return;
          write({ offset: chunk.offset, data: chunk.data });
        }
      },
    },
    bidi: {
      Write: async (requests, ctx, write) => {
        const ns = ctx.namespace();
        let writer: ReturnType<ContentStore['writer']> | undefined;
        try {
          for await (const raw of requests) {
            const req = raw as WriteRequest;
            if (writer === undefined) {
              if (req.ref === '') throw new RpcStatus(grpc.status.INVALID_ARGUMENT, 'first message must have a reference');
              if (req.expected !== '' && cs.has(ns, req.expected)) throw new TsrunError('AlreadyExists', `content ${req.expected}: already exists`);
              writer = cs.writer(ns, req.ref, int64(req.total), req.expected, ctx.lease);
            }
            if (req.expected !== '') {
              if (cs.has(ns, req.expected)) {
                writer.close();
                cs.abort(ns, req.ref);
                writer = undefined;
                throw new TsrunError('AlreadyExists', `blob with expected digest ${req.expected} exists: already exists`);
              }
              writer.setExpected(req.expected);
            }
            if (int64(req.total) > 0) writer.setTotal(int64(req.total));
            // a pull's stream is many small messages: only STAT needs the ingest's file status
            const current = writer.offset();
            const msg: Record<string, unknown> = { action: req.action, offset: current };
            if (req.action === STAT) {
              const st = writer.status();
              Object.assign(msg, { digest: writer.digest(), startedAt: st.startedAt, updatedAt: st.updatedAt, total: st.total });
            } else {
              const off = int64(req.offset);
              if (off > 0 && off !== current) throw new RpcStatus(grpc.status.OUT_OF_RANGE, `write @${off} must occur at current offset ${current}`);
              if (off === 0 && current > 0) {
                writer.truncate();
                msg['offset'] = 0;
              }
              if (req.data.length > 0) {
                writer.write(req.data);
                msg['offset'] = (msg['offset'] as number) + req.data.length;
              }
              if (req.action === COMMIT) writer.commit(int64(req.total), req.expected, { ...req.labels }, ctx.lease);
              msg['digest'] = writer.digest();
            }
            write(msg);
          }
        } finally {
          writer?.close();
        }
      },
    },
  };
}
