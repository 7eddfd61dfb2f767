import t from 'tap';
import { defaultRoot, normalizeArgv } from '../../../../runtime/cli/main';

t.test('argv normalisation', async (t) => {
  t.same(normalizeArgv(['update', '--resources', '-', 'c1']), ['update', '--resources=-', 'c1'], "docker's update --resources -");
  t.same(normalizeArgv(['update', '-r', '-', 'c1']), ['update', '--resources=-', 'c1']);
  t.same(normalizeArgv(['update', '--resources', '/f.json', 'c1']), ['update', '--resources', '/f.json', 'c1']);
  t.same(normalizeArgv(['--rootless=true', '--root', '/r', 'kill', 'c1', '9']), ['--root', '/r', 'kill', 'c1', '9'], 'global --rootless=VALUE dropped');
  t.same(normalizeArgv(['--rootless', 'false', 'delete', 'c1']), ['delete', 'c1'], 'global --rootless VALUE dropped');
  t.same(normalizeArgv(['spec', '--rootless', '--bundle', 'b']), ['spec', '--rootless', '--bundle', 'b'], "spec's own --rootless kept");
  t.same(normalizeArgv(['--log', 'f', '--log-format=json', 'create', 'x']), ['--log', 'f', '--log-format=json', 'create', 'x']);
});

t.test('exec: the command after the container id keeps its own flags', async (t) => {
  t.same(normalizeArgv(['exec', 'c1', 'sh', '-c', 'exit 3']), ['exec', 'c1', '--', 'sh', '-c', 'exit 3']);
  t.same(normalizeArgv(['--root', '/r', 'exec', '--env', 'A=1', '-u', '1000', 'c1', 'ls', '-l']), ['--root', '/r', 'exec', '--env', 'A=1', '-u', '1000', 'c1', '--', 'ls', '-l']);
  t.same(normalizeArgv(['exec', '--process', '/p.json', '--detach', '--pid-file', '/x.pid', 'c1']), ['exec', '--process', '/p.json', '--detach', '--pid-file', '/x.pid', 'c1'], 'engines: no command');
  t.same(normalizeArgv(['exec', 'c1', '--', 'ls']), ['exec', 'c1', '--', 'ls'], 'an explicit -- is kept');
});

t.test('default root', async (t) => {
  t.equal(defaultRoot(0, '/run/user/0'), '/run/tsrun');
  t.equal(defaultRoot(1000, '/run/user/1000'), '/run/user/1000/tsrun');
  t.equal(defaultRoot(1000, ''), '/tmp/tsrun-1000', 'podman sets XDG_RUNTIME_DIR=""');
  t.equal(defaultRoot(1000, undefined), '/tmp/tsrun-1000');
});

t.test('kernel version checks', async (t) => {
  const { kernelAtLeast } = await import('../../../../runtime/container/features');
  t.ok(kernelAtLeast('6.18.44-fc-v657', 5, 12));
  t.ok(kernelAtLeast('5.12.0', 5, 12));
  t.notOk(kernelAtLeast('5.11.9', 5, 12));
  t.notOk(kernelAtLeast('4.19.0', 5, 12));
  t.notOk(kernelAtLeast('garbage', 5, 12));
});
