/**
 * `tsctl build` against a private tsrund, on the busybox test image (test/helpers/images.ts):
 * every instruction, multi-stage with --from and --target, build args, .dockerignore, the layer
 * cache proved by the progress output and by the layer digests (a changed file invalidates from
 * its COPY on; --no-cache rebuilds everything), ONBUILD, a failing RUN that leaves nothing, a
 * context symlink escape, ADD of a URL, a Dockerfile error naming its line, and an image built
 * here (and one committed) running under docker after `tsctl save | docker load`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { missingTools, startDockerd } from '../helpers/engines';
import { buildOciLayout, ociArchive } from '../helpers/images';
import { which } from '../helpers/host';
import { requires } from '../helpers/requires';
import { startTsctl, tsctlMissing, type TsctlEnv, type TsctlResult } from '../helpers/tsctl';

const why = tsctlMissing() ?? (which('tar') === undefined ? 'tar not installed' : undefined);
const show = (r: TsctlResult): string => `status ${r.status} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`;
let e: TsctlEnv;
let ctxDir: string;

function ok(t: Test, args: string[]): string {
  const r = e.tsctl(args, { timeoutMs: 240_000 });
  t.equal(r.status, 0, `tsctl ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

function snapshotKeys(): string[] {
  return e.d.ctr(['snapshots', 'ls'], { ns: e.ns }).stdout.split('\n').slice(1).map((l) => l.split(/\s+/)[0] ?? '').filter((k) => k !== '').sort();
}

function contentDigests(): string[] {
  return e.d.ctr(['content', 'ls', '-q'], { ns: e.ns }).stdout.split('\n').filter((l) => l !== '').sort();
}

interface Inspect {
  Id: string;
  Config: { User?: string; Env?: string[]; Cmd?: string[]; Entrypoint?: string[] | null; WorkingDir?: string; Labels?: Record<string, string>; ExposedPorts?: Record<string, unknown>; Volumes?: Record<string, unknown>; StopSignal?: string; OnBuild?: string[] };
  RootFS: { Layers: string[] };
}

function inspect(t: Test, name: string): Inspect {
  return (JSON.parse(ok(t, ['image', 'inspect', name])) as Inspect[])[0]!;
}

function write(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(ctxDir, rel)), { recursive: true });
  fs.writeFileSync(path.join(ctxDir, rel), text);
}

function dockerfile(name: string, text: string): string {
  const p = path.join(ctxDir, name);
  fs.writeFileSync(p, text);
  return p;
}

const MAIN = `# escape=\\
# a comment before the first instruction
ARG BASE=tsrunimg:base
FROM \${BASE} AS builder
ARG GREETING=hello
ENV OUT=/out \\
    MODE=build
WORKDIR /src
RUN echo "$GREETING from $MODE" > msg && mkdir -p $OUT && cp msg $OUT/
COPY --chown=nobody:nogroup files/ /src/files/

FROM tsrunimg:base
LABEL org.example.name="built image" version=1
COPY --from=builder /out/msg /app/msg
COPY *.txt /app/
ADD archive.tar.gz /app/extracted/
COPY link-inside /app/
ENV GREET=\${GREETING:-unset} ALT=\${OUT:+set}
RUN ["/bin/sh", "-c", "echo exec form > /app/exec"]
USER nobody
EXPOSE 8080 9000-9001/udp
VOLUME ["/vol"]
STOPSIGNAL SIGUSR1
SHELL ["/bin/sh", "-c"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/cat"]
CMD ["/app/msg"]
`;

if (why !== undefined) {
  t.plan(0, why);
} else {
  // a dozen real builds (each RUN a container, each COPY a snapshot mounted, diffed, committed)
  t.setTimeout(900_000);
  t.before(async () => {
    e = await startTsctl(t);
    const work = path.join(e.d.sandbox, 'images');
    fs.mkdirSync(work);
    const img = buildOciLayout(work, 'docker.io/library/tsrunimg:base');
    const r = e.d.ctr(['images', 'import', ociArchive(img, path.join(work, 'base.tar'))], { ns: e.ns });
    if (r.status !== 0) throw new Error(`ctr images import: ${r.stderr}`);
    ctxDir = path.join(e.d.sandbox, 'context');
    fs.mkdirSync(ctxDir);
    write('files/a', 'file a\n');
    write('files/sub/b', 'file b\n');
    write('a.txt', 'text a\n');
    write('b.txt', 'ignored text\n');
    write('secret-keep.txt', 'kept by an exception\n');
    write('README.md', 'not copied\n');
    write('.dockerignore', '# ignore\nb.txt\n*.md\nsecret*\n!secret-keep.txt\n');
    const arch = path.join(work, 'arch');
    fs.mkdirSync(path.join(arch, 'inner'), { recursive: true });
    fs.writeFileSync(path.join(arch, 'inner', 'file'), 'from the archive\n');
    const tr = spawnSync('tar', ['-C', arch, '-czf', path.join(ctxDir, 'archive.tar.gz'), 'inner'], { encoding: 'utf8' });
    if (tr.status !== 0) throw new Error(`tar: ${tr.stderr}`);
    fs.symlinkSync('files/a', path.join(ctxDir, 'link-inside'));
    fs.symlinkSync('/etc/passwd', path.join(ctxDir, 'escape-abs'));
    fs.symlinkSync('../outside', path.join(ctxDir, 'escape-rel'));
    fs.writeFileSync(path.join(e.d.sandbox, 'outside'), 'outside the context\n');
    dockerfile('Dockerfile', MAIN);
  });

  t.test('every instruction, multi-stage, build args, .dockerignore', async (t) => {
    const out = ok(t, ['build', '-t', 'app:1', '-t', 'app:also', '--label', 'from.flag=yes', ctxDir]);
    t.match(out, /^Step 1\/24 : ARG BASE=tsrunimg:base$/m, 'docker\'s step lines, counted over every stage (and --label\'s LABEL)');
    t.match(out, /^Step 4\/24 : ENV OUT=\/out {5}MODE=build$/m, 'a continuation joined');
    t.match(out, /^ ---> Running in [0-9a-f]{12}$/m);
    t.match(out, /^Removing intermediate container [0-9a-f]{12}$/m);
    t.match(out, /^Successfully built [0-9a-f]{12}$/m);
    t.match(out, /^Successfully tagged app:1\nSuccessfully tagged app:also\n$/m);
    t.notMatch(out, 'Using cache', 'a first build uses no cache');
    t.equal(ok(t, ['run', '--rm', 'app:1']), 'hello from build\n', 'ENTRYPOINT + CMD; RUN and COPY --from the first stage');
    t.equal(
      ok(t, ['run', '--rm', '--entrypoint', '/bin/sh', 'app:1', '-c', 'ls /app; cat /app/extracted/inner/file /app/link-inside /app/exec; echo "$GREET $ALT"; id -u']),
      'a.txt\nexec\nextracted\nlink-inside\nmsg\nsecret-keep.txt\nfrom the archive\nfile a\nexec form\nunset \n65534\n',
      'COPY globs minus .dockerignore (with its exception), ADD extracts a tar, a symlink inside the context copied as its file, ENV substitution rules, USER',
    );
    const i = inspect(t, 'app:1');
    t.same(i.Config.Entrypoint, ['/bin/cat']);
    t.same(i.Config.Cmd, ['/app/msg']);
    t.equal(i.Config.User, 'nobody');
    t.same(Object.keys(i.Config.ExposedPorts ?? {}).sort(), ['8080/tcp', '9000/udp', '9001/udp']);
    t.same(Object.keys(i.Config.Volumes ?? {}).sort(), ['/data', '/vol'], 'VOLUME adds to the base image\'s');
    t.equal(i.Config.StopSignal, 'SIGUSR1');
    t.same(i.Config.Labels, { 'org.test': 'yes', 'org.example.name': 'built image', version: '1', 'from.flag': 'yes' });
    t.same(i.Config.OnBuild, ['RUN echo triggered']);
    t.equal(inspect(t, 'app:also').Id, i.Id, 'both tags name one image');
    const hist = ok(t, ['history', '--no-trunc', 'app:1']);
    for (const s of ['CMD ["/app/msg"]', 'ENTRYPOINT ["/bin/cat"]', 'USER nobody', 'EXPOSE 8080/tcp 9000/udp 9001/udp', '/bin/sh -c echo exec form > /app/exec', 'COPY file:', 'ADD file:', 'LABEL from.flag=yes']) t.match(hist, s, `history shows ${s}`);

    const b = ok(t, ['build', '--target', 'builder', '--build-arg', 'GREETING=hi', '-t', 'app:builder', ctxDir]);
    t.match(b, /^Step 7\/7 : COPY/m, '--target stops after its stage');
    t.equal(ok(t, ['run', '--rm', 'app:builder', 'sh', '-c', 'pwd; cat msg; stat -c "%u %g %n" files/a files/sub/b']), '/src\nhi from build\n65534 65534 files/a\n65534 65534 files/sub/b\n', 'WORKDIR, --build-arg, COPY --chown with names from the image');
  });

  t.test('the cache: hits, a changed file, --no-cache; by output and by layer digests', async (t) => {
    const before = inspect(t, 'app:1');
    const [snaps, blobs, logFrom] = [snapshotKeys(), contentDigests(), e.d.log().length];
    const again = ok(t, ['build', '-t', 'app:1', '--label', 'from.flag=yes', ctxDir]);
    t.equal((again.match(/ ---> Using cache/g) ?? []).length, 21, 'every step after the FROMs and the global ARG comes from the cache');
    t.notMatch(again, 'Running in', 'no container ran');
    t.equal(inspect(t, 'app:1').Id, before.Id, 'the same image id');
    t.same([snapshotKeys(), contentDigests()], [snaps, blobs], 'an unchanged rebuild makes no snapshot and no blob');
    t.notMatch(e.d.log().slice(logFrom), /rpc failed/, 'nor tries to: no blob written again (AlreadyExists), no image created again');
    write('a.txt', 'text a, changed\n');
    const changed = ok(t, ['build', '-t', 'app:2', '--label', 'from.flag=yes', ctxDir]);
    const steps = changed.split(/^Step /m).slice(1);
    const cachedUpTo = steps.findIndex((s) => !s.includes('Using cache') && !s.startsWith('1/') && !/^\d+\/\d+ : FROM/.test(s));
    t.match(steps[cachedUpTo] ?? '', /^11\/24 : COPY \*\.txt/, 'the first step not cached is the COPY that reads the changed file');
    t.ok(steps.slice(cachedUpTo).every((s) => !s.includes('Using cache')), 'and nothing after it is cached');
    const now = inspect(t, 'app:2');
    t.same(now.RootFS.Layers.slice(0, 4), before.RootFS.Layers.slice(0, 4), 'layers before the change are the same blobs');
    t.not(now.RootFS.Layers[4], before.RootFS.Layers[4], 'the COPY layer differs');
    // the cached steps' configs were not read until the COPY missed: its config takes their history, times included
    const history = (id: string): Array<{ created: string; created_by: string }> => (JSON.parse(e.d.ctr(['content', 'get', id], { ns: e.ns }).stdout) as { history: Array<{ created: string; created_by: string }> }).history;
    const [h1, h2] = [history(before.Id), history(now.Id)];
    t.equal(h2.length, h1.length, 'one history entry per step');
    const diverge = h1.findIndex((h, i) => JSON.stringify(h) !== JSON.stringify(h2[i]));
    t.match(h1[diverge]?.created_by, /#\(nop\) COPY dir:[0-9a-f]{64} in \/app\/ $/, 'the history up to the changed COPY is the cached one, times included');
    t.equal(ok(t, ['run', '--rm', 'app:2', '/app/a.txt']), 'text a, changed\n');
    write('README.md', 'ignored, so no cache change\n');
    t.equal((ok(t, ['build', '-t', 'app:2', '--label', 'from.flag=yes', ctxDir]).match(/Using cache/g) ?? []).length, 21, 'a change to an ignored file invalidates nothing');
    // steps recorded before tsctl.build.layer named the diff id are still found (their config is read)
    const layerLabels = e.d.ctr(['content', 'ls'], { ns: e.ns }).stdout.split('\n').flatMap((l) => {
      const m = /^(sha256:[0-9a-f]{64})\s.*tsctl\.build\.layer=([^,]+)/.exec(l);
      return m === null ? [] : [[m[1]!, m[2]!.trim()] as const];
    });
    t.ok(layerLabels.length >= 6, `the layer steps are labelled: ${layerLabels.length}`);
    t.ok(layerLabels.every(([, v]) => v.split(' ').length === 4), 'with media type, digest, size, diff id');
    for (const [digest, value] of layerLabels) e.d.ctr(['content', 'label', digest, `tsctl.build.layer=${value.split(' ').slice(0, 3).join(' ')}`], { ns: e.ns });
    t.equal((ok(t, ['build', '-t', 'app:2', '--label', 'from.flag=yes', ctxDir]).match(/Using cache/g) ?? []).length, 21, 'labels without the diff id still hit');
    t.equal(inspect(t, 'app:2').Id, now.Id, 'and give the same image');
    const nc = ok(t, ['build', '--no-cache', '--target', 'builder', '-t', 'app:nc', ctxDir]);
    t.notMatch(nc, 'Using cache', '--no-cache');
    t.match(nc, 'Running in', 'the RUN ran again');
    t.not(inspect(t, 'app:nc').Id, inspect(t, 'app:builder').Id, 'a new image');
  });

  t.test('ONBUILD triggers run in the child build; scratch; SHELL; ARG scoping', async (t) => {
    const df = dockerfile('Dockerfile.child', 'FROM app:1\nRUN echo child step\n');
    const out = ok(t, ['build', '-f', df, '-t', 'child:1', ctxDir]);
    t.match(out, /# Executing 1 build trigger\n ---> Running in [0-9a-f]{12}\ntriggered\n[^]*Step 2\/2 : RUN echo child step\n ---> Running in [0-9a-f]{12}\nchild step\n/, 'the trigger runs right after FROM, before the child\'s own steps');
    t.equal(inspect(t, 'child:1').Config.OnBuild ?? null, null, 'triggers are not inherited');
    const s = dockerfile('Dockerfile.scratch', 'FROM scratch\nCOPY files /\nCMD ["/a"]\n');
    ok(t, ['build', '-q', '-f', s, '-t', 'scratchy:1', ctxDir]);
    t.equal(inspect(t, 'scratchy:1').RootFS.Layers.length, 1, 'one layer on scratch');
    // the echo writes to stderr, where sh -x writes its trace: sh writes "+ " and the command in
    // separate writes, and from two pipes the other stream's line could land between them (a
    // redirection inside the RUN cannot help: the trace of that command goes out before it)
    const sh = dockerfile('Dockerfile.shell', 'ARG V=global\nFROM tsrunimg:base\nRUN echo "[$V]"\nARG V\nSHELL ["/bin/sh", "-xc"]\nRUN echo "[$V]" >&2\n');
    const so = ok(t, ['build', '--no-cache', '-f', sh, ctxDir]);
    t.match(so, /^\[\]$/m, 'a global ARG is not seen in a stage before ARG names it');
    t.match(so, /^\[global\]$/m, 'ARG NAME brings the global default into the stage');
    t.match(so, /^\+ echo '\[global\]'$/m, 'SHELL changes the shell of shell-form RUN (sh -x traces it)');
    t.match(so, /^Successfully built [0-9a-f]{12}$/m, 'an untagged build');
    const q = ok(t, ['build', '-q', '-f', sh, ctxDir]);
    t.match(q, /^sha256:[0-9a-f]{64}\n$/, '-q prints only the id');
  });

  t.test('a failing RUN: exit code, output, and nothing left', async (t) => {
    const df = dockerfile('Dockerfile.fail', 'FROM tsrunimg:base\nCOPY a.txt /a.txt\nRUN echo output before failing; exit 3\nCMD ["true"]\n');
    const snaps = snapshotKeys();
    const blobs = contentDigests();
    const r = e.tsctl(['build', '-t', 'broken:1', '-f', df, ctxDir], { timeoutMs: 120_000 });
    t.equal(r.status, 1, show(r));
    t.match(r.stdout, /^output before failing$/m, 'the RUN\'s output is shown');
    t.match(r.stderr, "Dockerfile line 3: RUN echo output before failing; exit 3: The command '/bin/sh -c echo output before failing; exit 3' returned a non-zero code: 3");
    t.equal(e.tsctl(['image', 'inspect', 'broken:1']).status, 1, 'no image was tagged');
    t.same(snapshotKeys(), snaps, 'no snapshot left');
    t.same(contentDigests(), blobs, 'no blob left');
    t.equal(ok(t, ['ps', '-aq']), '', 'no container left');
  });

  t.test('bad input: a symlink out of the context, ADD of a URL, a Dockerfile error, a missing image', async (t) => {
    const cases: Array<[string, string, RegExp | string]> = [
      ['Dockerfile.abs', 'FROM tsrunimg:base\nCOPY escape-abs /x\n', 'Dockerfile line 2: COPY escape-abs /x: escape-abs: the symlink escape-abs -> /etc/passwd leaves the build context'],
      ['Dockerfile.rel', 'FROM tsrunimg:base\nCOPY escape-rel /x\n', 'the symlink escape-rel -> ../outside leaves the build context'],
      ['Dockerfile.dotdot', 'FROM tsrunimg:base\nCOPY ../outside /x\n', 'forbidden path outside the build context'],
      ['Dockerfile.url', 'FROM tsrunimg:base\nADD http://127.0.0.1:1/x /x\n', 'Dockerfile line 2: ADD http://127.0.0.1:1/x /x: ADD http://127.0.0.1:1/x: remote sources are not supported'],
      ['Dockerfile.bad', 'FROM tsrunimg:base\n\nFROBNICATE x\n', 'Dockerfile line 3: unknown instruction: FROBNICATE'],
      ['Dockerfile.missing', 'FROM nosuchimage:1\n', "Unable to find image 'nosuchimage:1' locally"],
      ['Dockerfile.ignored', 'FROM tsrunimg:base\nCOPY b.txt /x\n', 'file not found in build context or excluded by .dockerignore'],
    ];
    const snaps = snapshotKeys();
    for (const [name, text, want] of cases) {
      const r = e.tsctl(['build', '-f', dockerfile(name, text), ctxDir]);
      t.not(r.status, 0, `${name}: ${show(r)}`);
      t.match(r.stderr, want, name);
      t.notMatch(r.stdout, 'outside the context', `${name}: nothing from outside was read`);
    }
    t.same(snapshotKeys(), snaps, 'nothing left behind');
  });

  t.test('rmi of the built images lets the collector take their layers and cache', async (t) => {
    for (const n of ['app:1', 'app:also', 'app:2', 'app:nc', 'app:builder', 'child:1', 'scratchy:1']) ok(t, ['rmi', n]);
    ok(t, ['image', 'prune', '-f']);
    const left = e.d.ctr(['content', 'ls'], { ns: e.ns }).stdout;
    t.notMatch(left, 'tsctl.build.cache', 'no cached step config is left');
    t.equal(snapshotKeys().length, 3, 'only the base image\'s three layers stay');
  });

  const noDocker = missingTools('dockerd', 'containerd', 'containerd-shim-runc-v2');
  t.test('an image built here and one committed here run under docker after save | load', { skip: noDocker ?? false }, async (t) => {
    if (!requires(t, 'root', 'busybox')) return;
    const d = await startDockerd(t);
    const df = dockerfile('Dockerfile.docker', 'FROM tsrunimg:base\nCOPY a.txt /built.txt\nRUN echo ran > /ran\nCMD ["cat", "/built.txt", "/ran"]\n');
    ok(t, ['build', '-f', df, '-t', 'fordocker:built', ctxDir]);
    ok(t, ['run', '--name', 'tocommit', 'tsrunimg:base', 'sh', '-c', 'echo committed > /c; rm /etc/motd']);
    ok(t, ['commit', '-c', 'CMD ["sh", "-c", "cat /c; test -e /etc/motd || echo motd-gone"]', 'tocommit', 'fordocker:committed']);
    ok(t, ['rm', 'tocommit']);
    const tar = path.join(e.d.sandbox, 'fordocker.tar');
    ok(t, ['save', '-o', tar, 'fordocker:built', 'fordocker:committed']);
    const loaded = d.docker(['load', '-i', tar]);
    t.equal(loaded.code, 0, loaded.stderr);
    const built = d.docker(['run', '--rm', '--network', 'none', 'fordocker:built']);
    t.equal(built.stdout, 'text a, changed\nran\n', `docker runs the built image: ${built.stderr}`);
    const committed = d.docker(['run', '--rm', '--network', 'none', 'fordocker:committed']);
    t.equal(committed.stdout, 'committed\nmotd-gone\n', `docker runs the committed image, whiteout included: ${committed.stderr}`);
    ok(t, ['rmi', 'fordocker:built', 'fordocker:committed']);
  });
}
