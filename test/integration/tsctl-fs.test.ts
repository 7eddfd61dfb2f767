/**
 * A container's file system through tsctl, as docker's commands: `diff` (A/C/D from the overlay
 * upper dir: whiteouts, an opaque directory), `cp` both ways (files, directories, SRC/., tar on
 * stdin/stdout, -a owners, -L), `export` (the merged root as a tar) and `ps -s` (the layer's size,
 * virtual with the image's), on running and stopped containers of the three-layer busybox image
 * (test/helpers/images.ts) imported with ctr.
 *
 * Symlink safety: a host directory H holds a secret; the container has symlinks to it (absolute,
 * relative with enough ".." to leave any root, a symlinked parent directory) and, at the same
 * path inside itself, its own H. Every copy through those links must read and write the container's
 * H, never the host's: without resolution inside the container root each of these checks fails
 * (the kernel would follow the links on the host). A crafted tar on stdin (a symlink then a file
 * below it, a ".." name) is refused.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from '../../supervisor/diff/tar-header';
import { buildOciLayout, ociArchive } from '../helpers/images';
import { which } from '../helpers/host';
import { startTsctl, tsctlMissing, tsctlPath, type TsctlEnv, type TsctlResult } from '../helpers/tsctl';

const why = tsctlMissing() ?? (which('tar') === undefined ? 'tar not installed' : undefined);
const show = (r: TsctlResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;
const IMAGE = 'docker.io/library/tsfsimg:1';

let e: TsctlEnv;
let work: string;
/** the host directory the container's symlinks point at */
let hostSide: string;

function ok(t: Test, args: string[]): string {
  const r = e.tsctl(args);
  t.equal(r.status, 0, `tsctl ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

function fails(t: Test, args: string[], want: RegExp): void {
  const r = e.tsctl(args);
  t.not(r.status, 0, `tsctl ${args.join(' ')} fails`);
  t.match(r.stderr, want, show(r));
}

/** tsctl with binary stdin/stdout (tar streams). */
function tsctlBin(args: string[], input?: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(tsctlPath, args, { input: input ?? Buffer.alloc(0), env: e.env, timeout: 60_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function sh(t: Test, name: string, script: string): string {
  return ok(t, ['exec', name, 'sh', '-c', script]);
}

function tarList(file: string): string[] {
  const r = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar -tf ${file}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

function header(name: string, type: TarHeader['type'], size = 0, linkname = ''): Buffer {
  return encodeHeader({ name, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size, mtime: 1_700_000_000, linkname, devmajor: 0, devminor: 0, xattrs: new Map() });
}

function tarOf(entries: Array<{ name: string; type: TarHeader['type']; body?: string; linkname?: string }>): Buffer {
  const parts: Buffer[] = [];
  for (const en of entries) {
    const body = Buffer.from(en.body ?? '');
    parts.push(header(en.name, en.type, en.type === 'file' ? body.length : 0, en.linkname ?? ''));
    if (en.type === 'file') parts.push(body, padding(body.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

function mountsOfTests(): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes('tsctl-rootfs-'));
}

if (why !== undefined) {
  t.plan(0, why);
} else {
  t.before(async () => {
    e = await startTsctl(t);
    work = path.join(e.d.sandbox, 'fs');
    fs.mkdirSync(work);
    const img = buildOciLayout(path.join(work, 'image'), IMAGE);
    const r = e.d.ctr(['images', 'import', ociArchive(img, path.join(work, 'image.tar'))], { ns: e.ns });
    if (r.status !== 0) throw new Error(`ctr images import: ${r.stderr}`);
    hostSide = path.join(e.d.sandbox, 'hostside');
    fs.mkdirSync(hostSide);
    fs.writeFileSync(path.join(hostSide, 'secret'), 'HOST SECRET\n');
  });

  t.test('diff lists A, C, D (whiteouts, an opaque dir), running and stopped', async (t) => {
    ok(t, ['run', '-d', '--name', 'fsdiff', IMAGE, 'sleep', '1000']);
    const base = ok(t, ['diff', 'fsdiff']).split('\n').filter((l) => l !== '');
    sh(t, 'fsdiff', 'echo changed > /etc/motd; rm /etc/group; mkdir -p /new/sub; echo f > /new/sub/f; rm -rf /keep; mkdir /keep; echo n > /keep/fresh; ln -s /etc/motd /lnk');
    const lines = ok(t, ['diff', 'fsdiff']).split('\n').filter((l) => l !== '');
    const mine = lines.filter((l) => !base.includes(l));
    for (const want of ['C /etc', 'C /etc/motd', 'D /etc/group', 'A /new', 'A /new/sub', 'A /new/sub/f', 'C /keep', 'D /keep/new', 'A /keep/fresh', 'A /lnk']) {
      t.ok(lines.includes(want), `${want} in ${JSON.stringify(lines)}`);
    }
    t.same(
      mine.filter((l) => !l.startsWith('C /etc') || l === 'C /etc/motd').sort(),
      ['A /keep/fresh', 'A /lnk', 'A /new', 'A /new/sub', 'A /new/sub/f', 'C /etc/motd', 'C /keep', 'D /etc/group', 'D /keep/new'].sort(),
      `nothing else changed: ${JSON.stringify(mine)}`,
    );
    t.same([...lines].sort((a, b) => (a.slice(2) < b.slice(2) ? -1 : 1)), lines, 'sorted by path');
    t.notOk(lines.some((l) => /^. \/keep\/old$|^. \/doomed/.test(l)), 'what the image itself deleted is not the container\'s change');
    t.match(ok(t, ['ps', '--format', 'json']), '"State":"running"', 'diff left the container running (not paused)');
    ok(t, ['kill', 'fsdiff']);
    t.same(ok(t, ['diff', 'fsdiff']).split('\n').filter((l) => l !== ''), lines, 'the same list once it stopped');
    fails(t, ['diff', 'nosuch'], /No such container: nosuch/);
  });

  t.test('ps -s: the container layer and, virtual, with the image', async (t) => {
    const out = ok(t, ['ps', '-a', '-s']);
    t.match(out.split('\n')[0], /\sSIZE$/);
    const row = out.split('\n').find((l) => l.includes('fsdiff')) ?? '';
    const m = /(\d+(?:\.\d+)?)([kMG]?B) \(virtual (\d+(?:\.\d+)?)([kMG]?B)\)$/.exec(row);
    t.ok(m !== null, `docker's SIZE column: ${row}`);
    const bytes = (n: string, u: string): number => Number(n) * ({ B: 1, kB: 1e3, MB: 1e6, GB: 1e9 } as Record<string, number>)[u]!;
    if (m !== null) {
      const rw = bytes(m[1]!, m[2]!);
      const virtual = bytes(m[3]!, m[4]!);
      t.ok(rw > 0 && rw < 100_000, `the layer holds the few small files written: ${rw}`);
      t.ok(virtual > 500_000, `virtual adds the image (busybox): ${virtual}`);
    }
    const json = JSON.parse(ok(t, ['ps', '-a', '-s', '--format', 'json']).split('\n')[0]!) as { Size?: string };
    t.match(json.Size, /^\d+(\.\d+)?[kMG]?B \(virtual \d+(\.\d+)?[kMG]?B\)$/);
    t.notMatch(ok(t, ['ps', '-a']), /SIZE/, 'no SIZE column without -s');
  });

  t.test('export writes the merged file system; stdout and -o agree', async (t) => {
    const file = path.join(work, 'export.tar');
    ok(t, ['export', '-o', file, 'fsdiff']);
    t.notOk(fs.existsSync(`${file}.partial`));
    const names = tarList(file);
    for (const want of ['bin/busybox', 'etc/motd', 'new/sub/f', 'keep/fresh', 'data/a', 'lnk']) t.ok(names.includes(want), `${want} exported`);
    for (const gone of ['etc/group', 'keep/new', 'keep/old', 'doomed/file']) t.notOk(names.includes(gone), `${gone} not exported`);
    t.equal(spawnSync('tar', ['-xOf', file, 'etc/motd'], { encoding: 'utf8' }).stdout, 'changed\n');
    const piped = tsctlBin(['export', 'fsdiff']);
    t.equal(piped.status, 0, piped.stderr);
    t.ok(piped.stdout.equals(fs.readFileSync(file)), 'the same bytes on stdout');
    t.same(mountsOfTests(), [], 'the stopped container\'s snapshot is unmounted again');
    fails(t, ['export', '-o', path.join(work, 'none.tar'), 'nosuch'], /No such container/);
    t.notOk(fs.existsSync(path.join(work, 'none.tar')) || fs.existsSync(path.join(work, 'none.tar.partial')));
    // a running container: exported while it runs, and still running afterwards
    ok(t, ['run', '-d', '--name', 'fsexp', IMAGE, 'sleep', '1000']);
    const live = tsctlBin(['export', 'fsexp']);
    t.equal(live.status, 0, live.stderr);
    const liveTar = path.join(work, 'live.tar');
    fs.writeFileSync(liveTar, live.stdout);
    t.ok(tarList(liveTar).includes('etc/motd'));
    t.match(ok(t, ['inspect', '-f', '{{.State.Status}}', 'fsexp']), 'running');
    ok(t, ['rm', '-f', 'fsexp']);
  });

  t.test('cp out: files, directories, SRC/., -L, a tar on stdout, owners', async (t) => {
    ok(t, ['start', 'fsdiff']);
    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    ok(t, ['cp', 'fsdiff:/etc/motd', path.join(out, 'motd.txt')]);
    t.equal(fs.readFileSync(path.join(out, 'motd.txt'), 'utf8'), 'changed\n');
    ok(t, ['cp', 'fsdiff:/etc/motd', out]);
    t.equal(fs.readFileSync(path.join(out, 'motd'), 'utf8'), 'changed\n', 'into an existing directory under its own name');
    ok(t, ['cp', 'fsdiff:/new', path.join(out, 'newcopy')]);
    t.equal(fs.readFileSync(path.join(out, 'newcopy', 'sub', 'f'), 'utf8'), 'f\n', 'a directory to a new name');
    fs.mkdirSync(path.join(out, 'existing'));
    ok(t, ['cp', 'fsdiff:/new', path.join(out, 'existing')]);
    t.ok(fs.existsSync(path.join(out, 'existing', 'new', 'sub', 'f')), 'a directory into an existing one');
    fs.mkdirSync(path.join(out, 'contents'));
    ok(t, ['cp', 'fsdiff:/new/.', path.join(out, 'contents')]);
    t.same(fs.readdirSync(path.join(out, 'contents')), ['sub'], 'SRC/. copies the contents');
    ok(t, ['cp', 'fsdiff:/lnk', path.join(out, 'lnk')]);
    t.equal(fs.readlinkSync(path.join(out, 'lnk')), '/etc/motd', 'a symlink is copied as one');
    ok(t, ['cp', '-L', 'fsdiff:/lnk', path.join(out, 'followed')]);
    t.equal(fs.readFileSync(path.join(out, 'followed'), 'utf8'), 'changed\n', '-L copies what it points to (inside the container)');
    fails(t, ['cp', 'fsdiff:/new', path.join(out, 'motd.txt')], /cannot copy a directory to a file/);
    fails(t, ['cp', 'fsdiff:/etc/motd', path.join(out, 'nodir', 'x')], /no such directory/);
    fails(t, ['cp', 'fsdiff:/nothere', out], /Could not find the file \/nothere in container fsdiff/);
    fails(t, ['cp', 'fsdiff:/a', 'fsdiff:/b'], /between containers/);

    const tar = tsctlBin(['cp', 'fsdiff:/new', '-']);
    t.equal(tar.status, 0, tar.stderr);
    const tarFile = path.join(work, 'new.tar');
    fs.writeFileSync(tarFile, tar.stdout);
    t.same(tarList(tarFile), ['new/', 'new/sub/', 'new/sub/f'], 'a tar of SRC on stdout');

    sh(t, 'fsdiff', 'echo owned > /owned; chown 1234:4321 /owned');
    ok(t, ['cp', 'fsdiff:/owned', path.join(out, 'owned')]);
    t.equal(fs.statSync(path.join(out, 'owned')).uid, process.getuid!(), 'without -a: the caller owns the copy');
    ok(t, ['cp', '-a', 'fsdiff:/owned', path.join(out, 'owned-a')]);
    const st = fs.statSync(path.join(out, 'owned-a'));
    t.same([st.uid, st.gid], [1234, 4321], '-a keeps uid and gid');
    t.match(ok(t, ['inspect', '-f', '{{.State.Status}}', 'fsdiff']), 'running', 'resumed after the copy');
  });

  t.test('cp in: files, directories, SRC/., a tar on stdin, owners, read-only rootfs', async (t) => {
    const src = path.join(work, 'in');
    fs.mkdirSync(path.join(src, 'tree', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(src, 'file.txt'), 'from the host\n');
    fs.writeFileSync(path.join(src, 'tree', 'deep', 'leaf'), 'leaf\n');
    fs.chownSync(path.join(src, 'file.txt'), 1234, 4321);
    ok(t, ['cp', path.join(src, 'file.txt'), 'fsdiff:/tmp/']);
    t.equal(sh(t, 'fsdiff', 'cat /tmp/file.txt; stat -c %u:%g /tmp/file.txt'), 'from the host\n0:0\n', 'into a directory, owned by root without -a');
    ok(t, ['cp', '-a', path.join(src, 'file.txt'), 'fsdiff:/tmp/kept']);
    t.equal(sh(t, 'fsdiff', 'stat -c %u:%g /tmp/kept'), '1234:4321\n', '-a keeps uid and gid');
    ok(t, ['cp', path.join(src, 'file.txt'), 'fsdiff:/etc/motd']);
    t.equal(sh(t, 'fsdiff', 'cat /etc/motd'), 'from the host\n', 'an existing file is overwritten');
    ok(t, ['cp', path.join(src, 'tree'), 'fsdiff:/copied']);
    t.equal(sh(t, 'fsdiff', 'cat /copied/deep/leaf'), 'leaf\n', 'a directory to a new name');
    ok(t, ['cp', path.join(src, 'tree'), 'fsdiff:/copied']);
    t.equal(sh(t, 'fsdiff', 'cat /copied/tree/deep/leaf'), 'leaf\n', 'a directory into an existing one');
    sh(t, 'fsdiff', 'mkdir /contents');
    ok(t, ['cp', `${path.join(src, 'tree')}/.`, 'fsdiff:/contents']);
    t.equal(sh(t, 'fsdiff', 'ls /contents'), 'deep\n', 'SRC/. copies the contents');
    fails(t, ['cp', path.join(src, 'file.txt'), 'fsdiff:/nodir/'], /no such directory/);
    fails(t, ['cp', path.join(src, 'tree'), 'fsdiff:/etc/motd'], /cannot copy a directory to a file/);
    fails(t, ['cp', path.join(src, 'nothere'), 'fsdiff:/tmp'], /no such file or directory/);

    const tar = tarOf([
      { name: 'piped/', type: 'dir' },
      { name: 'piped/one', type: 'file', body: 'one\n' },
    ]);
    const r = tsctlBin(['cp', '-', 'fsdiff:/tmp'], tar);
    t.equal(r.status, 0, r.stderr);
    t.equal(sh(t, 'fsdiff', 'cat /tmp/piped/one'), 'one\n', 'a tar on stdin unpacked into DEST');
    const notDir = tsctlBin(['cp', '-', 'fsdiff:/etc/motd'], tar);
    t.not(notDir.status, 0);
    t.match(notDir.stderr, /must be a directory/);

    // a stopped container: its snapshot is mounted for the copy, then unmounted
    ok(t, ['kill', 'fsdiff']);
    ok(t, ['cp', path.join(src, 'file.txt'), 'fsdiff:/stopped.txt']);
    ok(t, ['cp', 'fsdiff:/stopped.txt', path.join(work, 'stopped.txt')]);
    t.equal(fs.readFileSync(path.join(work, 'stopped.txt'), 'utf8'), 'from the host\n');
    t.same(mountsOfTests(), [], 'nothing left mounted');
    ok(t, ['start', 'fsdiff']);
    t.equal(sh(t, 'fsdiff', 'cat /stopped.txt'), 'from the host\n', 'the copy is in the container\'s layer');

    ok(t, ['run', '-d', '--read-only', '--name', 'fsro', IMAGE, 'sleep', '1000']);
    fails(t, ['cp', path.join(src, 'file.txt'), 'fsro:/tmp/'], /read-only/);
    ok(t, ['rm', '-f', 'fsro']);
  });

  t.test('a container without a task: its snapshot is mounted for the command, then unmounted', async (t) => {
    ok(t, ['create', '--name', 'fsnew', IMAGE, 'sleep', '1000']);
    const f = path.join(work, 'new-in.txt');
    fs.writeFileSync(f, 'new\n');
    ok(t, ['cp', f, 'fsnew:/etc/']);
    ok(t, ['cp', 'fsnew:/etc/new-in.txt', path.join(work, 'new-out.txt')]);
    t.equal(fs.readFileSync(path.join(work, 'new-out.txt'), 'utf8'), 'new\n');
    t.same(ok(t, ['diff', 'fsnew']).split('\n').filter((l) => l !== ''), ['C /etc', 'A /etc/new-in.txt']);
    const tar = path.join(work, 'fsnew.tar');
    ok(t, ['export', '-o', tar, 'fsnew']);
    t.ok(tarList(tar).includes('etc/new-in.txt'));
    // a link out of the container, planted with a tar on stdin: copies through it stay inside
    const r = tsctlBin(['cp', '-', 'fsnew:/'], tarOf([{ name: 'esc', type: 'symlink', linkname: hostSide }]));
    t.equal(r.status, 0, r.stderr);
    fails(t, ['cp', f, 'fsnew:/esc/'], /no such directory/);
    fails(t, ['cp', 'fsnew:/esc/secret', path.join(work, 'leak')], /Could not find the file/);
    t.notOk(fs.existsSync(path.join(work, 'leak')));
    t.same(fs.readdirSync(hostSide), ['secret'], 'nothing written on the host');
    t.same(mountsOfTests(), [], 'nothing left mounted');
    t.same(fs.readdirSync(e.tmp), [], 'no temporary mount point left');
    ok(t, ['start', 'fsnew']);
    t.equal(sh(t, 'fsnew', 'cat /etc/new-in.txt; readlink /esc'), `new\n${hostSide}\n`, 'what was copied in is there when it runs');
    ok(t, ['rm', '-f', 'fsnew']);
  });

  t.test('cp reaches volumes and bind mounts as docker does; read-only ones and tmpfs refused', async (t) => {
    const bindDir = path.join(work, 'bind');
    fs.mkdirSync(bindDir);
    const vol = `fsvol${process.pid}`;
    ok(t, ['volume', 'create', vol]);
    const volDir = (JSON.parse(ok(t, ['volume', 'inspect', vol])) as Array<{ Mountpoint: string }>)[0]!.Mountpoint;
    ok(t, ['run', '-d', '--read-only', '--name', 'fsmnt', '-v', `${vol}:/data`, '-v', `${bindDir}:/bound`, '-v', `${hostSide}:/ro:ro`, '--tmpfs', '/scratch', IMAGE, 'sleep', '1000']);
    const f = path.join(work, 'to-volume.txt');
    fs.writeFileSync(f, 'into the volume\n');
    ok(t, ['cp', f, 'fsmnt:/data/']);
    t.equal(fs.readFileSync(path.join(volDir, 'to-volume.txt'), 'utf8'), 'into the volume\n', 'the file is in the volume on the host');
    t.equal(sh(t, 'fsmnt', 'cat /data/to-volume.txt'), 'into the volume\n', 'and the container sees it');
    ok(t, ['cp', f, 'fsmnt:/bound/b.txt']);
    t.equal(fs.readFileSync(path.join(bindDir, 'b.txt'), 'utf8'), 'into the volume\n', 'a bind mount gets it in its source');
    sh(t, 'fsmnt', 'echo made inside > /data/inside.txt');
    ok(t, ['cp', 'fsmnt:/data/inside.txt', path.join(work, 'from-volume.txt')]);
    t.equal(fs.readFileSync(path.join(work, 'from-volume.txt'), 'utf8'), 'made inside\n', 'copied out of the volume');
    ok(t, ['cp', 'fsmnt:/ro/secret', path.join(work, 'from-ro.txt')]);
    t.equal(fs.readFileSync(path.join(work, 'from-ro.txt'), 'utf8'), 'HOST SECRET\n', 'a read-only mount can be read');
    fails(t, ['cp', f, 'fsmnt:/ro/'], /mounted volume is marked read-only/);
    t.same(fs.readdirSync(hostSide), ['secret'], 'nothing written in the read-only mount');
    fails(t, ['cp', f, 'fsmnt:/tmp/'], /rootfs is marked read-only/);
    fails(t, ['cp', f, 'fsmnt:/scratch/'], /tmpfs mount of the container \(\/scratch\)/);
    // a link in the volume to an absolute path resolves in the container's root, not the host's
    sh(t, 'fsmnt', `ln -s ${hostSide} /data/out`);
    fails(t, ['cp', 'fsmnt:/data/out/secret', path.join(work, 'leak2')], /Could not find the file/);
    t.notOk(fs.existsSync(path.join(work, 'leak2')));
    ok(t, ['rm', '-f', 'fsmnt']);
    ok(t, ['volume', 'rm', vol]);
  });

  t.test('symlinks in the container never lead out of it', async (t) => {
    const H = hostSide;
    const up = '../'.repeat(20);
    // the container's own H (same path) and links to it every way
    sh(t, 'fsdiff', [
      `mkdir -p ${H} && echo INSIDE > ${H}/secret`,
      `ln -s ${H}/secret /abs-escape`,
      `ln -s ${up}${H.slice(1)}/secret /rel-escape`,
      `ln -s ${H} /dir-escape`,
      `mkdir -p /a/b && ln -s ${up}${H.slice(1)} /a/b/reldir-escape`,
    ].join(' && '));
    const out = path.join(work, 'sym');
    fs.mkdirSync(out);
    const read = (args: string[], file: string): string => {
      ok(t, ['cp', ...args, path.join(out, file)]);
      return fs.readFileSync(path.join(out, file), 'utf8');
    };
    t.equal(read(['-L', 'fsdiff:/abs-escape'], 'o1'), 'INSIDE\n', 'absolute link followed (-L) inside the container');
    t.equal(read(['-L', 'fsdiff:/rel-escape'], 'o2'), 'INSIDE\n', 'relative link with ".." beyond / stays inside');
    t.equal(read(['fsdiff:/dir-escape/secret'], 'o3'), 'INSIDE\n', 'a symlinked parent directory resolves inside');
    t.equal(read(['fsdiff:/a/b/reldir-escape/secret'], 'o4'), 'INSIDE\n', 'a relative symlinked parent resolves inside');
    ok(t, ['cp', 'fsdiff:/dir-escape/.', path.join(out, 'o5')]);
    t.same(fs.readdirSync(path.join(out, 'o5')), ['secret'], 'SRC/. through a link');
    t.equal(fs.readFileSync(path.join(out, 'o5', 'secret'), 'utf8'), 'INSIDE\n');

    const planted = path.join(work, 'planted');
    fs.writeFileSync(planted, 'PLANTED\n');
    ok(t, ['cp', planted, 'fsdiff:/dir-escape/']);
    t.notOk(fs.existsSync(path.join(H, 'planted')), 'nothing written in the host directory');
    t.equal(sh(t, 'fsdiff', `cat ${H}/planted`), 'PLANTED\n', 'it landed in the container\'s own directory');
    ok(t, ['cp', planted, 'fsdiff:/a/b/reldir-escape/planted2']);
    t.notOk(fs.existsSync(path.join(H, 'planted2')), 'nothing written through the relative parent link');
    t.equal(sh(t, 'fsdiff', `cat ${H}/planted2`), 'PLANTED\n');
    ok(t, ['cp', planted, 'fsdiff:/abs-escape']);
    ok(t, ['cp', planted, 'fsdiff:/rel-escape']);
    t.equal(fs.readFileSync(path.join(H, 'secret'), 'utf8'), 'HOST SECRET\n', 'the host file the links name is untouched');
    t.equal(sh(t, 'fsdiff', `cat ${H}/secret`), 'PLANTED\n', 'the container\'s file they name was overwritten');

    // crafted tars on stdin: a symlink out, then a file below it; a ".." name
    const viaLink = tsctlBin(['cp', '-', 'fsdiff:/tmp'], tarOf([
      { name: 'out', type: 'symlink', linkname: H },
      { name: 'out/evil', type: 'file', body: 'EVIL\n' },
    ]));
    t.not(viaLink.status, 0, 'a file below a symlink of the same tar is refused');
    t.match(viaLink.stderr, /symlink/);
    const dotdot = tsctlBin(['cp', '-', 'fsdiff:/tmp'], tarOf([{ name: `${up}${H.slice(1)}/evil`, type: 'file', body: 'EVIL\n' }]));
    t.not(dotdot.status, 0, 'a ".." name is refused');
    t.match(dotdot.stderr, /\.\./);
    t.notOk(fs.existsSync(path.join(H, 'evil')), 'no file reached the host directory');

    // stopped: the same resolution on the temporarily mounted snapshot
    ok(t, ['kill', 'fsdiff']);
    t.equal(read(['-L', 'fsdiff:/rel-escape'], 'o6'), 'PLANTED\n', 'stopped: resolved inside too');
    ok(t, ['cp', planted, 'fsdiff:/dir-escape/planted3']);
    t.notOk(fs.existsSync(path.join(H, 'planted3')));
    t.same(fs.readdirSync(H), ['secret'], 'the host directory holds only its own file');
    t.same(mountsOfTests(), [], 'nothing left mounted');
    ok(t, ['rm', '-f', 'fsdiff']);
  });
}
