import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { checkNamespacePaths, joinedNamespaces } from '../../../../runtime/container/ns-paths';
import { parseSpec } from '../../../../spec';

t.test('a namespace file of the listed type passes', async (t) => {
  t.doesNotThrow(() => checkNamespacePaths([{ at: 'linux.namespaces[0].path', type: 'network', path: '/proc/self/ns/net' }]));
  t.doesNotThrow(() => checkNamespacePaths([{ at: 'x', type: 'mount', path: '/proc/self/ns/mnt' }]));
  t.doesNotThrow(() => checkNamespacePaths([{ at: 'x', type: 'pid', path: '/proc/self/ns/pid_for_children' }]), 'pid_for_children is a pid namespace');
});

t.test('wrong type, no namespace, missing: each named with the path', async (t) => {
  t.throws(() => checkNamespacePaths([{ at: 'linux.namespaces[2].path', type: 'network', path: '/proc/self/ns/mnt' }]), {
    code: 'InvalidArgument',
    message: 'linux.namespaces[2].path /proc/self/ns/mnt: is a mnt namespace, not net',
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-ns-paths-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, '');
  t.throws(() => checkNamespacePaths([{ at: 'a', type: 'uts', path: file }]), { message: `a ${file}: not a namespace file` });
  // a directory (what a typo of /proc/<pid>/ns gives), not stdin: opening /proc/self/fd/0 fails
  // with ENXIO when the test's stdin is a socket
  t.throws(() => checkNamespacePaths([{ at: 'a', type: 'uts', path: dir }]), { message: `a ${dir}: not a namespace file` });
  t.throws(() => checkNamespacePaths([{ at: 'a', type: 'ipc', path: path.join(dir, 'gone') }]), { code: 'NotFound', message: `a ${dir}/gone: no such file or directory` });
});

t.test('joinedNamespaces lists only entries with a path, by field', async (t) => {
  const spec = parseSpec(JSON.stringify({ ociVersion: '1.2.0', root: { path: 'r' }, linux: { namespaces: [{ type: 'pid' }, { type: 'network', path: '/run/netns/a' }] } }), 'config.json');
  t.same(joinedNamespaces(spec), [{ at: 'linux.namespaces[1].path', type: 'network', path: '/run/netns/a' }]);
});
