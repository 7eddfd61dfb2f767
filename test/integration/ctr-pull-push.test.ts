/**
 * The real ctr (containerd 1.6's client) pushing to and pulling from a docker-registry on 127.0.0.1
 * through tsrund, as it does against containerd: `ctr images push --plain-http` reads the image's
 * blobs from tsrund's Content service (under a lease) and uploads them itself; `ctr images pull
 * --plain-http` fetches them and writes them through Content ingests, records the image with
 * Images.Create and unpacks it (Snapshots + Diff.Apply) so `ctr run` starts it. No downloads: the
 * three-layer busybox image is built here (test/helpers/images.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { buildOciLayout, ociArchive, type TestImage } from '../helpers/images';
import { registryMissing, startRegistry, type RegistryServer } from '../helpers/registry';
import { startTsrund, tsrundMissing, type CtrResult, type Tsrund } from '../helpers/tsrund';
import { waitFor } from '../helpers/wait';

const why = tsrundMissing() ?? registryMissing();
const show = (r: CtrResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;
const LOCAL = 'docker.io/library/tsimg:ctrpush';

let d: Tsrund;
let img: TestImage;
let reg: RegistryServer;

function ctrOk(args: readonly string[]): CtrResult {
  const r = d.ctr(args, { timeoutMs: 120_000 });
  if (r.status !== 0) throw new Error(`ctr ${args.join(' ')}: ${show(r)}`);
  return r;
}

function store(): { blobs: string[]; ingests: string[]; snapshots: string[] } {
  const ls = (...p: string[]): string[] => {
    const dir = path.join(d.root, ...p);
    return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  };
  return { blobs: ls('content', 'blobs', 'sha256'), ingests: ls('content', 'ingest'), snapshots: ls('snapshots', 'overlayfs', 'snapshots') };
}

/** The registry's own record of a tag: the manifest digest it serves. */
async function registryDigest(repo: string, tag: string): Promise<string | null> {
  const res = await fetch(`http://${reg.host}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  return res.status === 200 ? res.headers.get('docker-content-digest') : null;
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    d = await startTsrund(t);
    const work = path.join(d.sandbox, 'ctr-push');
    fs.mkdirSync(work);
    img = buildOciLayout(work, LOCAL);
    ociArchive(img, path.join(work, 'oci.tar'));
    reg = await startRegistry();
    t.teardown(() => reg.stop());
    ctrOk(['images', 'import', path.join(work, 'oci.tar')]);
  });

  t.test('ctr push --plain-http, rm, ctr pull --plain-http, run', async (t) => {
    const name = `${reg.host}/ctrpush/tsimg:1`;
    ctrOk(['images', 'tag', LOCAL, name]);
    t.equal(await registryDigest('ctrpush/tsimg', '1'), null, 'not in the registry before the push');
    const push = ctrOk(['images', 'push', '--plain-http', name]);
    t.match(push.stdout + push.stderr, /manifest-sha256|layer-sha256|elapsed/, `ctr reported its progress: ${show(push)}`);
    t.equal(await registryDigest('ctrpush/tsimg', '1'), img.manifestDigest, 'the registry serves the pushed manifest');
    for (const l of img.layerDigests) {
      const res = await fetch(`http://${reg.host}/v2/ctrpush/tsimg/blobs/${l}`, { method: 'HEAD' });
      t.equal(res.status, 200, `layer ${l} uploaded`);
    }
    t.same(store().ingests, [], 'the push left no ingest');

    // remove every name: the collector empties the store
    ctrOk(['images', 'rm', '--sync', name, LOCAL]);
    await waitFor(() => store().blobs.length === 0 && store().snapshots.length === 0, 10_000);
    t.same(store(), { blobs: [], ingests: [], snapshots: [] }, 'nothing left before the pull');

    const pull = ctrOk(['images', 'pull', '--plain-http', name]);
    t.match(pull.stdout, /unpacking linux\/[a-z0-9]+ sha256:[0-9a-f]{64}\.\.\.\ndone/, `ctr unpacked what it pulled: ${show(pull)}`);
    const ls = ctrOk(['images', 'ls']).stdout;
    const row = ls.split('\n').find((l) => l.startsWith(`${name} `));
    t.ok(row !== undefined, `listed: ${ls}`);
    t.match(row ?? '', img.manifestDigest, 'same manifest digest as pushed');
    t.equal(store().blobs.length, 2 + img.layerDigests.length, 'manifest, config and layers stored');
    t.equal(store().snapshots.length, img.layerDigests.length, 'one snapshot per layer');
    t.same(store().ingests, [], 'the pull left no ingest');
    const check = ctrOk(['images', 'check']);
    const n = 1 + img.layerDigests.length; // ctr counts the config and the layers
    t.match(check.stdout, new RegExp(`${name.replace(/[./]/g, '\\$&')}\\s+\\S+\\s+\\S+\\s+complete \\(${n}/${n}\\)\\s.*true`), `config and layers present, unpacked: ${check.stdout}`);

    const id = d.newId('ctrpull');
    const run = d.ctr(['run', '--rm', '--fifo-dir', d.fifoDir, name, id, 'cat', '/etc/motd'], { timeoutMs: 60_000 });
    t.equal(run.status, 0, show(run));
    t.equal(run.stdout, 'layer three\n', 'the pulled image runs');

    // pulled again: every blob is already there, nothing is fetched twice or left behind
    const again = ctrOk(['images', 'pull', '--plain-http', name]);
    t.match(again.stdout, /done/, show(again));
    t.same(store().ingests, []);
  });

  t.test('a missing tag fails naming it and leaves nothing', async (t) => {
    const before = store();
    const r = d.ctr(['images', 'pull', '--plain-http', `${reg.host}/ctrpush/tsimg:nope`], { timeoutMs: 60_000 });
    t.not(r.status, 0);
    t.match(r.stderr, /nope.*not found|not found.*nope/, show(r));
    t.same(store(), before, 'no blob, ingest or snapshot added');
    const push = d.ctr(['images', 'push', '--plain-http', `${reg.host}/ctrpush/none:1`], { timeoutMs: 60_000 });
    t.not(push.status, 0);
    t.match(push.stderr, /not found/, show(push));
  });
}
