/*
 * The registry client's BlobStore over tsrund's content store, for one namespace and one lease.
 * Commit verifies size and digest (the content store's writer does); a failed commit or an abort
 * removes the ingest, so a pull cut short leaves no half-written blob. A blob the namespace
 * already holds commits as a success (two pulls racing for one layer).
 */
import * as fs from 'node:fs';
import { TsrunError } from '../../spec/errors';
import type { ContentStore } from '../content/store';
import type { BlobReader, BlobStore, BlobWriter, Expected } from '../registry/index';

/** A BlobStore on `cs` in namespace `ns`; blobs and ingests join `lease` ("" for none). */
export function contentBlobStore(cs: ContentStore, ns: string, lease: string): BlobStore {
  return {
    has: async (digest) => cs.has(ns, digest),
    async reader(digest): Promise<BlobReader> {
      const info = cs.info(ns, digest);
      return { size: info.size, stream: fs.createReadStream(cs.blobPath(digest)) };
    },
    async writer(ref: string, expected: Expected): Promise<BlobWriter> {
      const w = cs.writer(ns, ref, expected.size, expected.digest, lease);
      let done = false;
      const drop = (): void => {
        if (done) return;
        done = true;
        w.close();
        cs.abort(ns, ref);
      };
      return {
        get offset() {
          return w.offset();
        },
        write: async (chunk) => {
          if (w.offset() + chunk.length > expected.size) {
            throw new TsrunError('InvalidArgument', `ingest ${ref}: more than the expected ${expected.size} bytes of ${expected.digest}`);
          }
          w.write(chunk);
        },
        reset: async () => w.truncate(),
        commit: async () => {
          try {
            w.commit(expected.size, expected.digest, {}, lease);
            done = true;
          } catch (e) {
            if (e instanceof TsrunError && e.code === 'AlreadyExists') {
              done = true;
              return;
            }
            try {
              drop();
            } catch {
              // the ingest is gone already
            }
            const why = e instanceof Error ? e.message : String(e);
            throw new TsrunError('InvalidArgument', `commit blob ${expected.digest}: failed verification: ${why}`, { cause: e });
          }
        },
        abort: async () => {
          try {
            drop();
          } catch (e) {
            if (!(e instanceof TsrunError && e.code === 'NotFound')) throw e;
          }
        },
      };
    },
  };
}
