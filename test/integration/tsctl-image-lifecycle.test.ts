/**
 * The life of a `tsctl run IMAGE` container after create, on the three-layer busybox image of
 * test/helpers/images.ts imported with the real ctr:
 *
 *   --restart on-failure:2   tsrund's restart loop re-creates the task with the snapshot's mounts
 *                            (it has no rootfs path of its own): two restarts, RestartCount 2
 *   run -d --rm              auto-removal by tsrund takes the anonymous volumes (image VOLUME and
 *                            -v /path) with the container, keeps named ones
 *   kill -9 of tsctl         between Snapshots.Prepare and Containers.Create (test-only crash
 *                            point): the snapshot is held only by the run's lease, which expires,
 *                            and the collector then removes it
 *   an image id              (or a prefix of it) names the image in run, tag, image inspect and rmi,
 *                            as in docker; rmi of an id with two names needs -f
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { buildOciLayout, ociArchive } from '../helpers/images';
import { which } from '../helpers/host';
import { startTsctl, tsctlMissing, type TsctlEnv, type TsctlResult } from '../helpers/tsctl';
import { waitFor } from '../helpers/wait';

const why = tsctlMissing() ?? (which('tar') === undefined ? 'tar not installed' : undefined);
const show = (r: TsctlResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;
const IMAGE = 'docker.io/library/tsrunlife:plain';
let e: TsctlEnv;

function ok(t: Test, args: string[]): string {
  const r = e.tsctl(args);
  t.equal(r.status, 0, `tsctl ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

function snapshotKeys(): string[] {
  const r = e.d.ctr(['snapshots', 'ls'], { ns: e.ns });
  return r.stdout.split('\n').slice(1).map((l) => l.split(/\s+/)[0] ?? '').filter((k) => k !== '');
}

function leaseIds(): string[] {
  return e.d.ctr(['leases', 'ls', '-q'], { ns: e.ns }).stdout.split('\n').filter((l) => l !== '');
}

function volumeNames(): string[] {
  return e.tsctl(['volume', 'ls', '-q']).stdout.split('\n').filter((l) => l !== '');
}

/** Run the collector now: a lease deleted with --sync makes tsrund collect before answering. */
function collect(t: Test): void {
  const made = e.d.ctr(['leases', 'create'], { ns: e.ns });
  const id = /ID (\S+)/.exec(made.stdout)?.[1] ?? made.stdout.trim().split(/\s+/).pop() ?? '';
  t.equal(e.d.ctr(['leases', 'rm', '--sync', id], { ns: e.ns }).status, 0, `ctr leases rm --sync ${id}`);
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    e = await startTsctl(t);
    const work = path.join(e.d.sandbox, 'images');
    fs.mkdirSync(work);
    const img = buildOciLayout(work, IMAGE);
    const r = e.d.ctr(['images', 'import', ociArchive(img, path.join(work, 'plain.tar'))], { ns: e.ns });
    if (r.status !== 0) throw new Error(`ctr images import: ${r.stderr}`);
  });

  t.test('an image id names the image: run, tag, image inspect, rmi (-f when it has two names)', async (t) => {
    const id = ok(t, ['images', '-q', IMAGE]).trim().split('\n')[0] ?? '';
    t.match(id, /^[0-9a-f]{12}$/, 'a short image id');
    const full = JSON.parse(ok(t, ['image', 'inspect', id])) as Array<{ Id: string; RepoTags: string[] }>;
    t.equal(full[0]?.Id.slice(7, 19), id, 'image inspect by id');
    t.equal(ok(t, ['run', '--rm', id.slice(0, 6), 'echo', 'by-id']).trim(), 'by-id', 'run by an id prefix');
    ok(t, ['tag', id, 'tsrunlife:second']);
    const refused = e.tsctl(['rmi', id]);
    t.equal(refused.status, 1, show(refused));
    t.match(refused.stderr, `unable to delete ${id} (must be forced) - image is referenced in multiple repositories`);
    const gone = e.tsctl(['rmi', '-f', id]);
    t.equal(gone.status, 0, show(gone));
    t.match(gone.stdout, 'Untagged: tsrunlife:second');
    t.match(gone.stdout, 'Untagged: tsrunlife:plain');
    t.equal(e.tsctl(['images', '-q']).stdout, '', 'both names are gone');
    const missing = e.tsctl(['rmi', id]);
    t.equal(missing.status, 1);
    t.match(missing.stderr, `No such image: ${id}`);
    // the other tests run the image by name: bring it back
    const again = e.d.ctr(['images', 'import', path.join(e.d.sandbox, 'images', 'plain.tar')], { ns: e.ns });
    t.equal(again.status, 0, again.stderr);
  });

  t.test('--restart on-failure:2 restarts an image container twice, from its snapshot', async (t) => {
    // each run appends to the image's VOLUME /data (kept across restarts) and fails
    const id = ok(t, ['run', '-d', '--name', 'rs', '--restart', 'on-failure:2', 'tsrunlife:plain', 'sh', '-c', 'cat /etc/motd >> /data/runs; exit 1']).trim();
    const state = (): { Status: string; Restarting: boolean; ExitCode: number } => JSON.parse(ok(t, ['inspect', '-f', '{{json .State}}', 'rs'])) as { Status: string; Restarting: boolean; ExitCode: number };
    const count = (): string => e.tsctl(['inspect', '-f', '{{.RestartCount}}', 'rs']).stdout.trim();
    t.ok(await waitFor(() => count() === '2' && state().Status === 'exited', 30_000, 100), `restarted twice, then exited (RestartCount ${count()}, ${JSON.stringify(state())})`);
    t.equal(state().ExitCode, 1);
    const source = (JSON.parse(ok(t, ['inspect', '-f', '{{json .Mounts}}', 'rs'])) as Array<{ Source: string; Destination: string }>).find((m) => m.Destination === '/data')?.Source ?? '/nonexistent';
    t.equal(fs.readFileSync(path.join(source, 'runs'), 'utf8'), 'layer three\n'.repeat(3), 'three runs, each on the image\'s rootfs');
    t.match(ok(t, ['ps', '-a']), /Exited \(1\)/);
    const rootfsMounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => (l.split(' ')[4] ?? '').endsWith(`/${id}`) && l.includes(' - overlay '));
    t.ok(rootfsMounts.length <= 1, `no rootfs mount left over by the restarts: ${rootfsMounts.join('; ')}`);
    ok(t, ['rm', '-v', 'rs']);
    t.notOk(snapshotKeys().includes(id), 'rm removed the snapshot');
  });

  t.test('run -d --rm: auto-removal takes the anonymous volumes, not named ones', async (t) => {
    const before = volumeNames();
    const id = ok(t, ['run', '-d', '--rm', '-v', '/extra', '-v', 'lifenamed:/named', 'tsrunlife:plain', 'sh', '-c', 'echo x > /extra/f; echo y > /named/f; echo z > /data/f']).trim();
    t.ok(await waitFor(() => !e.tsctl(['ps', '-aq', '--no-trunc']).stdout.includes(id), 20_000, 100), 'the container removed itself');
    t.same(volumeNames().filter((v) => !before.includes(v)), ['lifenamed'], 'its two anonymous volumes (VOLUME /data, -v /extra) went with it');
    t.notOk(snapshotKeys().includes(id), 'and its snapshot, at once');
    ok(t, ['volume', 'rm', 'lifenamed']);
    // the attached --rm path is tsctl's own
    t.equal(ok(t, ['run', '--rm', '-v', '/extra', 'tsrunlife:plain', 'true']), '');
    t.same(volumeNames().filter((v) => !before.includes(v)), [], 'attached --rm removes them too');
  });

  t.test('tsctl killed between Snapshots.Prepare and Containers.Create: the snapshot is collected', async (t) => {
    const before = snapshotKeys();
    const leasesBefore = leaseIds();
    const r = e.tsctl(['run', '-d', 'tsrunlife:plain', 'true'], { env: { TSRUND_TEST_CRASH_AT: 'tsctl:run-snapshot-prepared', TSCTL_TEST_LEASE_MS: '15000' } });
    t.equal(r.status, null, `tsctl died at the crash point: ${show(r)}`);
    t.match(r.stderr, 'crashing at tsctl:run-snapshot-prepared');
    const added = snapshotKeys().filter((k) => !before.includes(k));
    t.equal(added.length, 1, `one snapshot left: ${added.join(' ')}`);
    const key = added[0] ?? '';
    t.match(key, /^[0-9a-f]{64}$/, 'the container\'s, keyed by its id');
    t.equal(ok(t, ['ps', '-aq']), '', 'no container record');
    t.notMatch(e.d.ctr(['snapshots', 'info', key], { ns: e.ns }).stdout, 'gc.root', 'no gc.root label keeps it');
    const runLeases = leaseIds().filter((l) => !leasesBefore.includes(l));
    t.equal(runLeases.length, 1, `held by the run's lease: ${runLeases.join(' ')}`);
    t.match(runLeases[0] ?? '', /^tsctl-run-/);
    collect(t);
    t.ok(snapshotKeys().includes(key), `kept while the lease has not expired: ${e.d.ctr(['leases', 'ls'], { ns: e.ns }).stdout}`);
    t.ok(
      await waitFor(
        () => {
          collect(t);
          return !snapshotKeys().includes(key);
        },
        60_000,
        500,
      ),
      'collected once the lease expired',
    );
    t.same(leaseIds().filter((l) => !leasesBefore.includes(l)), [], 'the expired lease went too');
    t.equal(ok(t, ['run', '--rm', 'tsrunlife:plain', 'cat', '/etc/motd']), 'layer three\n', 'the image is intact');
    t.same(leaseIds().filter((l) => !leasesBefore.includes(l)), [], 'a run that completes deletes its lease');
  });
}
