/** tsctl's pure parts: argument parsing, spec building, formatting, reference resolution. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { parseArgs, type OptionDef } from '../../../../supervisor/tsctl/args';
import { startFailureExit } from '../../../../supervisor/tsctl/context';
import { commandText, humanDuration, parseTimeArg, statusText } from '../../../../supervisor/tsctl/format';
import { jsonLogFromLabels } from '../../../../supervisor/labels';
import { resolveRef, type ContainerInfo } from '../../../../supervisor/tsctl/model';
import { buildSpec, parseBind, parseBytes, parseEnvFile, resolveUser } from '../../../../supervisor/tsctl/spec';

const defs: OptionDef[] = [
  { name: 'detach', short: 'd', kind: 'bool', help: '' },
  { name: 'interactive', short: 'i', kind: 'bool', help: '' },
  { name: 'tty', short: 't', kind: 'bool', help: '' },
  { name: 'env', short: 'e', kind: 'list', help: '' },
  { name: 'name', kind: 'string', help: '' },
];

t.test('parseArgs: grouped shorts, values, stop at the image', async (t) => {
  const a = parseArgs(['-dit', '-eA=1', '-e', 'B=2', '--name=x', 'img', '-e', 'ls'], defs, true);
  t.same([...a.bools].sort(), ['detach', 'interactive', 'tty']);
  t.same(a.lists.get('env'), ['A=1', 'B=2']);
  t.equal(a.strings.get('name'), 'x');
  t.same(a.operands, ['img', '-e', 'ls'], "the container's own flags stay its own");
  t.throws(() => parseArgs(['--nope'], defs, true), { message: 'unknown flag: --nope' });
  t.throws(() => parseArgs(['--name'], defs, true), { message: 'flag needs an argument: --name' });
});

t.test('spec from flags', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsctl-unit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'etc'));
  fs.writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  fs.writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\napp:x:1000:\nwheel:x:10:app\n');
  const s = buildSpec({
    id: 'a'.repeat(64), namespace: 'ns', image: dir, args: ['sh'], env: ['A=1'], tty: true, binds: [parseBind('/h:/c:ro')], readonlyRootfs: false,
    capAdd: [], capDrop: ['NET_RAW'], memory: parseBytes('64m', 'm'), cpus: 1.5, pidsLimit: 10, user: 'app', workdir: '/w',
  });
  t.equal(s.linux?.cgroupsPath, `/ns/${'a'.repeat(64)}`);
  t.same(s.linux?.resources?.memory, { limit: 64 << 20 });
  t.same(s.linux?.resources?.cpu, { quota: 150000, period: 100000 });
  t.same(s.linux?.resources?.pids, { limit: 10 });
  t.same(s.process?.user, { uid: 1000, gid: 1000, additionalGids: [10] });
  t.equal(s.hostname, 'aaaaaaaaaaaa');
  t.same(s.process?.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=aaaaaaaaaaaa', 'TERM=xterm', 'A=1']);
  t.notOk(s.process?.capabilities?.bounding?.includes('CAP_NET_RAW'));
  t.ok(s.process?.capabilities?.bounding?.includes('CAP_CHOWN'));
  t.match(s.mounts?.at(-1), { destination: '/c', type: 'bind', source: '/h', options: ['rbind', 'rprivate', 'ro'] });
  t.throws(() => resolveUser(dir, 'nobody'), /unable to find user nobody/);
  // 4294967295 is "leave unchanged" to setresuid(2): it would run the process as root.
  t.throws(() => resolveUser(dir, '4294967295'), { code: 'InvalidArgument', message: '-u 4294967295: invalid uid 4294967295: uids and gids must be in range 0-2147483647' });
  t.throws(() => resolveUser(dir, 'app:4294967295'), { message: '-u app:4294967295: invalid gid 4294967295: uids and gids must be in range 0-2147483647' });
  fs.appendFileSync(path.join(dir, 'etc', 'passwd'), 'evil:x:4294967295:0::/:/bin/sh\n');
  t.throws(() => resolveUser(dir, 'evil'), { message: /-u evil: invalid uid 4294967295/ }, "an image's passwd entry is range-checked too");
  t.same(resolveUser(dir, '2147483647:5'), { uid: 2147483647, gid: 5 });
  t.throws(() => parseBind('vol:/c'), /named volumes are not supported/);
  t.same(parseEnvFile('# c\nX=1\nHOME\n\nNOPE\n', { HOME: '/root' }), ['X=1', 'HOME=/root']);
});

t.test('formatting', async (t) => {
  t.equal(humanDuration(400), 'Less than a second');
  t.equal(humanDuration(1000), '1 second');
  t.equal(humanDuration(59_000), '59 seconds');
  t.equal(humanDuration(60_000), 'About a minute');
  t.equal(humanDuration(3 * 3600_000), '3 hours');
  t.equal(commandText(['sh', '-c', 'sleep 1000; echo done'], false), `"sh -c 'sleep 1000; …"`);
  const c = { state: 'restarting', exitCode: 2, finishedMs: 1000, startedMs: 0 } as unknown as ContainerInfo;
  t.equal(statusText(c, 3500), 'Restarting (2) 3 seconds ago');
  t.equal(parseTimeArg('10m', 1_000_000), 400_000);
  t.equal(parseTimeArg('1700000000', 0), 1_700_000_000_000);
  t.equal(startFailureExit('exec: "/x": stat /x: no such file or directory'), 127);
  t.equal(startFailureExit('exec: "/etc": permission denied'), 126);
});

t.test('references and log labels', async (t) => {
  const mk = (id: string, name: string): ContainerInfo => ({ id, name } as unknown as ContainerInfo);
  const all = [mk('abc1'.padEnd(64, '0'), 'web'), mk('abd2'.padEnd(64, '0'), 'abc1')];
  t.equal(resolveRef(all, 'abc1').name, 'abc1', 'an exact name beats an id prefix');
  t.equal(resolveRef(all, 'web').name, 'web');
  t.equal(resolveRef(all, 'abd').name, 'abc1');
  t.throws(() => resolveRef(all, 'ab'), /multiple IDs found/);
  t.throws(() => resolveRef(all, 'zzz'), { message: 'No such container: zzz' });
  t.same(jsonLogFromLabels({ 'tsctl.log-driver': 'json-file', 'tsctl.log-max-size': '1024', 'tsctl.log-max-file': '3' }, '/r', 'ns', 'id'), { path: '/r/ns/id/id-json.log', maxSize: 1024, maxFiles: 3 });
  t.equal(jsonLogFromLabels({}, '/r', 'ns', 'id'), undefined);
});

t.test('logs -t prints nine fraction digits whatever the log stored', async (t) => {
  const { fixedNano } = await import('../../../../supervisor/tsctl/commands/logs');
  t.equal(fixedNano('2026-11-23T18:00:00.12Z'), '2026-11-23T18:00:00.120000000Z');
  t.equal(fixedNano('2026-11-23T18:00:00Z'), '2026-11-23T18:00:00.000000000Z');
  t.equal(fixedNano('2026-11-23T18:00:00.123456789Z'), '2026-11-23T18:00:00.123456789Z');
});

t.test('state: a started container whose task a stop removed mid-restart is exited, not created', async (t) => {
  const { toInfo } = await import('../../../../supervisor/tsctl/model');
  const { LABELS } = await import('../../../../supervisor/labels');
  const wire = (labels: Record<string, string>) => ({
    id: 'c'.repeat(64),
    labels,
    image: '',
    runtime: { name: 'io.containerd.runc.v2', options: null },
    spec: null,
    snapshotter: '',
    snapshotKey: '',
    createdAt: null,
    updatedAt: null,
    extensions: {},
  });
  t.equal(toInfo(wire({}), undefined).state, 'created', 'never started');
  const c = toInfo(wire({ [LABELS.startedAt]: '2026-01-01T00:00:00Z', [LABELS.exitCode]: '3', [LABELS.finishedAt]: '2026-01-01T00:00:05.5Z' }), undefined);
  t.equal(c.state, 'exited');
  t.equal(c.exitCode, 3, 'the exit that led to the restart');
  t.equal(c.finishedMs, Date.parse('2026-01-01T00:00:05.5Z'));
});
