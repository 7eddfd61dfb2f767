/**
 * tsrund with `--shim native` and the runtime library (docs/native-shim.md §The library runtime):
 * tsrund builds the plan, the C shim spawns init from it (SPAWN_PLAN) and no bin/tsrun runs for
 * create, start or delete; the runtime's state directory stays what `tsrun` reads. A create that
 * fails after the spawn, a plan the shim refuses, and kill -9 of tsrund in the middle of a create
 * leave nothing that `delete --force` (and a task delete after the restart) does not remove.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRequest } from '../../supervisor/shims/c-shim';
import { startTsrund, taskStatusOf, tsrundMissing, type CtrResult, type Tsrund } from '../helpers/tsrund';
import { allPids, cgroupDirsFor, cmdline, isAlive, pidsOfBundle, ppidOf } from '../helpers/host';
import { waitFor } from '../helpers/wait';
import type { TeardownHost } from '../helpers/bundle';

const repoRoot = path.resolve(__dirname, '..', '..');
const nativeShim = path.join(repoRoot, 'build', 'tsrun-shim');
const tsrunBin = path.join(repoRoot, 'bin', 'tsrun');
const why = tsrundMissing() ?? (fs.existsSync(nativeShim) ? undefined : `native shim not built at ${nativeShim}: run "make build/tsrun-shim"`);
const show = (r: CtrResult): string => `status ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr.trim())}`;

/** bin/tsrun behind a wrapper that logs each command line, so a test sees which verbs ran it. */
function loggingTsrun(t: TeardownHost): { log: string; verbs: () => string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-shim-plan-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'calls');
  const wrapper = path.join(dir, 'tsrun');
  fs.writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${log}\nexec ${tsrunBin} "$@"\n`, { mode: 0o755 });
  const before = process.env['TSRUN_BINARY'];
  process.env['TSRUN_BINARY'] = wrapper;
  t.teardown(() => {
    if (before === undefined) delete process.env['TSRUN_BINARY'];
    else process.env['TSRUN_BINARY'] = before;
  });
  const verbs = (): string[] => {
    try {
      return fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split(' ').find((w) => ['create', 'start', 'exec', 'kill', 'delete', 'state', 'pause', 'resume', 'ps', 'events', 'update'].includes(w)) ?? l);
    } catch {
      return [];
    }
  };
  return { log, verbs };
}

/** An OCI spec for ctr run --config, with the sandbox's rootfs and a cgroup under the namespace. */
function specFor(d: Tsrund, id: string, args: string[], extra: Record<string, unknown> = {}): string {
  const spec = JSON.parse(d.ctr(['oci', 'spec']).stdout) as Record<string, unknown> & { process: Record<string, unknown>; linux: Record<string, unknown> };
  spec['root'] = { path: d.rootfs, readonly: false };
  spec.process['args'] = args;
  spec.process['terminal'] = false;
  spec.linux['cgroupsPath'] = `/${d.ns}/${id}`;
  Object.assign(spec, extra);
  const file = path.join(d.sandbox, `${id}.json`);
  fs.writeFileSync(file, JSON.stringify(spec));
  return file;
}

/** One request to a shim's control socket; the answer's fields (tag → string or u32). */
async function shimRequest(sock: string, type: number, fields: Parameters<typeof encodeRequest>[2]): Promise<Map<number, Buffer>> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sock);
    let buf = Buffer.alloc(0);
    s.on('error', reject);
    s.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) return;
      const body = buf.subarray(4, 4 + buf.readUInt32BE(0));
      const out = new Map<number, Buffer>();
      for (let pos = 6; pos + 3 <= body.length; pos += 3 + body.readUInt16BE(pos + 1)) out.set(body[pos]!, body.subarray(pos + 3, pos + 3 + body.readUInt16BE(pos + 1)));
      s.destroy();
      resolve(out);
    });
    s.write(encodeRequest(1, type, fields));
  });
}

const cgroupOf = (d: Tsrund, id: string): string => path.join('/sys/fs/cgroup', d.ns, id);

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.test('the library under the native shim: init and execs spawned from plans by the shim, no bin/tsrun at all', async (t) => {
    const calls = loggingTsrun(t);
    const d = await startTsrund(t, ['--shim', 'native']);
    const first = d.newId('plan');
    let r = d.ctr(['run', '--rm', ...d.runArgs(), first, '/bin/sh', '-c', 'echo out; echo err >&2; exit 3']);
    t.equal(r.status, 3, `exit code (${show(r)})`);
    t.equal(r.stdout, 'out\n', 'stdout');
    t.equal(r.stderr.includes('err'), true, 'stderr');
    // the shim unlinks its files before it closes tsrund's connection, and tsrund empties the directory after that
    t.notOk(fs.existsSync(path.join(d.shimRoot, d.ns, first)), 'run --rm leaves no shim directory');

    const id = d.newId('plan');
    r = d.ctr(['run', '-d', ...d.runArgs(), id, '/bin/sleep', '1000']);
    t.equal(r.status, 0, `run -d (${show(r)})`);
    const pid = Number(/\s(\d+)\s+RUNNING/.exec(d.ctr(['task', 'ls']).stdout.split('\n').find((l) => l.startsWith(id)) ?? '')?.[1]);
    const dir = path.join(d.shimRoot, d.ns, id);
    const shim = d.shimPids().find((p) => cmdline(p).includes(dir));
    t.ok(shim !== undefined && ppidOf(pid) === shim, `init (${pid}) is the shim's (${shim}) child`);
    const st = spawnSync(tsrunBin, ['--root', path.join(dir, 'runtime-root'), 'state', id], { encoding: 'utf8' });
    t.equal((JSON.parse(st.stdout || '{}') as { status?: string; pid?: number }).status, 'running', `bin/tsrun reads the state the library wrote (${st.stderr})`);
    t.equal(fs.readFileSync(path.join(dir, 'init.pid'), 'utf8'), String(pid), 'the pid file names init');
    r = d.ctr(['task', 'exec', '--exec-id', 'e1', '--fifo-dir', d.fifoDir, id, '/bin/sh', '-c', 'echo from exec; exit 4']);
    t.equal(r.stdout, 'from exec\n', `exec into it (${show(r)})`);
    t.equal(r.status, 4, 'with its exit code');
    r = d.ctr(['task', 'exec', '--exec-id', 'e2', '--fifo-dir', d.fifoDir, id, '/bin/nope']);
    t.not(r.status, 0, `an exec of a missing program fails (${show(r)})`);
    const e3 = d.ctrAsync(['task', 'exec', '--exec-id', 'e3', '--fifo-dir', d.fifoDir, id, '/bin/sleep', '1000']);
    t.ok(await waitFor(() => d.ctr(['task', 'ps', id]).stdout.includes('e3'), 10_000), 'a running exec is listed with its exec id');
    t.equal(d.ctr(['task', 'kill', '--exec-id', 'e3', '-s', '9', id]).status, 0, 'kill the exec');
    t.equal((await e3).status, 137, 'the exec ends with 137');
    t.equal(d.ctr(['task', 'kill', '-s', '9', id]).status, 0, 'kill');
    t.ok(await waitFor(() => taskStatusOf(d, id) === 'STOPPED', 10_000), 'the task stops');
    t.equal(d.ctr(['task', 'delete', id]).status, 0, 'task delete');
    t.equal(d.ctr(['container', 'rm', id]).status, 0, 'container rm');
    t.notOk(fs.existsSync(dir), 'the shim directory is gone');
    t.notOk(fs.existsSync(cgroupOf(d, id)), 'the cgroup is gone');
    const verbs = calls.verbs();
    t.same(verbs, [], `bin/tsrun never ran (${verbs.join(', ')})`);
  });

  t.test('a create that fails after the spawn, and a plan the shim refuses, leave no state, cgroup or process', async (t) => {
    const d = await startTsrund(t, ['--shim', 'native']);
    const id = d.newId('nope');
    const r = d.ctr(['run', '--rm', '--config', specFor(d, id, ['/bin/nope']), id]);
    t.not(r.status, 0, `a missing program fails the create (${show(r)})`);
    t.match(r.stderr, /nope/, 'and says which');
    t.notOk(fs.existsSync(path.join(d.shimRoot, d.ns, id)), 'no shim directory (nor runtime state in it)');
    t.notOk(fs.existsSync(cgroupOf(d, id)), 'no cgroup');
    t.ok(await waitFor(() => d.shimPids().every((p) => !cmdline(p).includes(id)), 5000), 'no shim for it');
    t.same(pidsOfBundle(d.rootfs, d.sandbox).filter((p) => p !== d.pid), [], 'no container process');

    // straight to a live shim: a plan file that is no plan, and fds announced but not sent
    const live = d.newId('live');
    t.equal(d.ctr(['run', '-d', ...d.runArgs(), live, '/bin/sleep', '1000']).status, 0, 'a container to talk to');
    const dir = path.join(d.shimRoot, d.ns, live);
    fs.writeFileSync(path.join(dir, 'junk.bin'), Buffer.alloc(64, 7));
    let a = await shimRequest(path.join(dir, 'shim.sock'), 10, [[1, 'bad'], [22, 'junk.bin'], [23, 0]]);
    t.match(a.get(18)?.toString() ?? '', /^InvalidArgument: .*magic/, `the decoder refuses it (${a.get(18)?.toString()})`);
    a = await shimRequest(path.join(dir, 'shim.sock'), 10, [[1, 'bad'], [22, 'junk.bin'], [23, 2]]);
    t.match(a.get(18)?.toString() ?? '', /2 fds announced, 0 came/, 'fds announced but not sent');
    a = await shimRequest(path.join(dir, 'shim.sock'), 7, []);
    t.equal(a.get(20)?.includes(Buffer.from('bad')) ?? false, false, 'the shim has no entry for it');
    t.same(fs.readdirSync(dir).filter((f) => /^pty-|^plan-/.test(f)), [], 'nor files');
    t.equal(d.ctr(['task', 'kill', '-s', '9', live]).status, 0, 'kill');
    t.ok(await waitFor(() => taskStatusOf(d, live) === 'STOPPED', 10_000), 'stopped');
    t.equal(d.ctr(['task', 'delete', live]).status, 0, 'task delete');
    t.equal(d.ctr(['container', 'rm', live]).status, 0, 'container rm');
  });

  t.test('kill -9 of tsrund during a create: delete --force removes what it left, the restarted tsrund the rest', async (t) => {
    const d = await startTsrund(t, ['--shim', 'native']);
    const id = d.newId('crash');
    const started = path.join(d.sandbox, `${id}.started`);
    const release = path.join(d.sandbox, `${id}.release`);
    t.teardown(() => fs.writeFileSync(release, ''));
    // holds create in the sync loop (init waits for RESUME) until released
    const wait = `touch ${started}; i=0; while [ ! -e ${release} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done`;
    const spec = specFor(d, id, ['/bin/true'], { hooks: { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', wait] }] } });
    const run = d.ctrAsync(['run', '--rm', '--config', spec, id], { timeoutMs: 60_000 });
    t.ok(await waitFor(() => fs.existsSync(started), 30_000), 'create is running the hook');
    const dir = path.join(d.shimRoot, d.ns, id);
    const runtimeRoot = path.join(dir, 'runtime-root');
    const shim = d.shimPids().find((p) => cmdline(p).includes(dir));
    t.ok(shim !== undefined, 'the shim runs');
    // init is the shim's clone, and it runs the sealed stage: nothing of the host's is its exe or mapped
    const init = allPids().find((p) => ppidOf(p) === shim && isAlive(p));
    t.ok(init !== undefined, "init (waiting for the hook's end) is the shim's child");
    if (init !== undefined) {
      t.match(fs.readlinkSync(`/proc/${init}/exe`), /^\/memfd:tsrun-stage/, 'its exe is the sealed stage');
      const maps = fs.readdirSync(`/proc/${init}/map_files`).map((m) => fs.readlinkSync(`/proc/${init}/map_files/${m}`));
      t.same(maps.filter((m) => !m.startsWith('/memfd:')), [], 'every mapping of a file is a memfd');
    }
    await d.kill9();
    fs.writeFileSync(release, '');
    await run;
    t.ok(await waitFor(() => pidsOfBundle(d.rootfs, d.sandbox).filter((p) => p !== shim).length === 0, 10_000), "init saw tsrund's end of the sync socket close and exited");
    t.ok(fs.existsSync(path.join(runtimeRoot, id, 'state.json')), 'the record create wrote first is left');
    const st = spawnSync(tsrunBin, ['--root', runtimeRoot, 'state', id], { encoding: 'utf8' });
    t.equal((JSON.parse(st.stdout || '{}') as { status?: string }).status, 'stopped', `tsrun state reports it stopped (${st.stderr.trim()})`);
    const del = spawnSync(tsrunBin, ['--root', runtimeRoot, 'delete', '--force', id], { encoding: 'utf8' });
    t.equal(del.status, 0, `tsrun delete --force (${del.stderr.trim()})`);
    t.notOk(fs.existsSync(path.join(runtimeRoot, id)), 'the runtime state is gone');
    t.notOk(fs.existsSync(cgroupOf(d, id)), 'the cgroup is gone');
    t.same(cgroupDirsFor(id), [], 'no cgroup of that id anywhere');

    await d.start();
    t.ok(await waitFor(() => taskStatusOf(d, id) === 'STOPPED' || taskStatusOf(d, id) === undefined, 10_000), `after the restart the task is not running (${taskStatusOf(d, id)})`);
    d.ctr(['task', 'delete', id]);
    t.equal(d.ctr(['container', 'rm', id]).status, 0, 'container rm');
    t.ok(await waitFor(() => shim === undefined || !isAlive(shim), 10_000), 'the shim is gone');
    t.notOk(fs.existsSync(dir), 'so is its directory');
  });
}
