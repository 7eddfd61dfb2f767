/*
 * tsrun.services.transfer.v1.Transfer: Pull and Push as server streams of progress
 * (transfer/transfer.ts does the work). The namespace header picks the image namespace.
 */
import type { ServiceImpl } from '../grpc/server';
import { parseReference, type Credentials } from '../registry/index';
import { loadArchive } from '../transfer/load';
import { pullImage, pushImage, type TransferDeps, type TransferProgress } from '../transfer/transfer';

interface WireAuth {
  username: string;
  password: string;
}

const authOf = (a: WireAuth | null | undefined): Credentials | undefined => (a === null || a === undefined || (a.username === '' && a.password === '') ? undefined : { username: a.username, password: a.password });

/** The Transfer service. */
export function transferService(deps: TransferDeps): ServiceImpl {
  return {
    service: 'tsrun.services.transfer.v1.Transfer',
    stream: {
      Pull: async (req: { reference: string; platform: string; auth: WireAuth | null }, ctx, write) => {
        const ns = ctx.namespace();
        const ref = parseReference(req.reference);
        await pullImage(deps, ns, { reference: req.reference, platform: req.platform, auth: authOf(req.auth), domain: ref.domain }, (p: TransferProgress) => write(p));
      },
      Push: async (req: { name: string; reference: string; auth: WireAuth | null }, ctx, write) => {
        const ns = ctx.namespace();
        const reference = req.reference !== '' ? req.reference : req.name;
        const ref = parseReference(reference);
        await pushImage(deps, ns, { name: req.name, reference, auth: authOf(req.auth), domain: ref.domain }, (p: TransferProgress) => write(p));
      },
    },
    bidi: {
      Load: async (requests: AsyncIterable<{ data: Uint8Array }>, ctx, write) => {
        const ns = ctx.namespace();
        async function* chunks(): AsyncGenerator<Buffer> {
          for await (const r of requests) if (r.data.length > 0) yield Buffer.from(r.data);
        }
        await loadArchive(deps, ns, chunks(), (p: TransferProgress) => write(p));
      },
    },
  };
}
