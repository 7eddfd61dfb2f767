/**
 * A namespace joined by path is often a bind mount of a namespace file (/run/netns/NAME, tsrund's
 * and CNI's network namespaces): its /proc/self/fd link is the mount point's path, not
 * "net:[inode]". The pre-clone check must accept it (and still refuse a plain file).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { checkNamespacePaths } from '../../runtime/container/ns-paths';
import { requires } from '../helpers/requires';

t.test('a bind-mounted network namespace passes the check; a plain file does not', async (t) => {
  if (!requires(t, 'root')) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-nsbind-'));
  const file = path.join(dir, 'net');
  fs.writeFileSync(file, '');
  const made = spawnSync('unshare', [`--net=${file}`, 'true'], { encoding: 'utf8' });
  t.teardown(() => {
    spawnSync('umount', [file]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  t.equal(made.status, 0, `unshare --net=FILE: ${made.stderr}`);
  t.doesNotThrow(() => checkNamespacePaths([{ at: 'linux.namespaces[0].path', type: 'network', path: file }]), 'accepted as a network namespace');
  const plain = path.join(dir, 'plain');
  fs.writeFileSync(plain, '');
  t.throws(() => checkNamespacePaths([{ at: 'linux.namespaces[0].path', type: 'network', path: plain }]), { message: /not a namespace file/ }, 'a plain file is refused');
});
