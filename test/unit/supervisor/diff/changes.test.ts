/**
 * overlayChanges (docker diff's list) on hand-made overlay layer dirs. Whiteouts (0:0 character
 * devices) and opaque directories (a trusted.* xattr) need root: those cases skip without it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { overlayChanges } from '../../../../supervisor/diff/changes';
import { lsetxattr, mknod, S_IFCHR } from '../../../../supervisor/diff/syscalls';
import { tempDir } from '../../../helpers/layers';

const isRoot = process.getuid?.() === 0;
const T = 1_600_000_000;

function file(root: string, rel: string, body = rel): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), body);
}

/** The copy-up of a directory: same mode as in the lower layer (mtimes: settle). */
function copyUpDir(lower: string, upper: string, rel: string): void {
  fs.mkdirSync(path.join(upper, rel), { recursive: true });
  for (let r = rel; r !== '.'; r = path.dirname(r)) fs.chmodSync(path.join(upper, r), fs.statSync(path.join(lower, r)).mode & 0o7777);
}

/** overlayfs keeps a copied-up directory's mtime (its entries change in upper only): do the same. */
function settle(lower: string, upper: string, rels: readonly string[]): void {
  for (const r of rels) fs.utimesSync(path.join(upper, r), T, T);
  for (const r of rels) fs.utimesSync(path.join(lower, r), T, T);
}

const lines = (upper: string, lowers: string[]): string[] => overlayChanges(upper, lowers).map((c) => `${c.kind} ${c.path}`);

t.test('added, changed, a copied-up parent, a directory whose metadata changed, nested additions', async (t) => {
  const base = tempDir(t);
  const [l1, upper] = [path.join(base, 'l1'), path.join(base, 'upper')];
  for (const f of ['etc/motd', 'etc/passwd', 'var/log/x', 'opt/keep']) file(l1, f);
  for (const d of ['etc', 'var', 'var/log', 'opt']) fs.utimesSync(path.join(l1, d), T, T);
  fs.mkdirSync(upper);
  copyUpDir(l1, upper, 'etc');
  file(upper, 'etc/motd', 'changed');
  copyUpDir(l1, upper, 'var/log');
  file(upper, 'var/log/new', 'added');
  copyUpDir(l1, upper, 'opt');
  fs.chmodSync(path.join(upper, 'opt'), 0o700);
  file(upper, 'srv/a/b', 'deep');
  fs.symlinkSync('/etc/motd', path.join(upper, 'lnk'));
  settle(l1, upper, ['etc', 'var', 'var/log', 'opt']);
  t.same(lines(upper, [l1]), ['A /lnk', 'C /etc/motd', 'C /opt', 'A /srv', 'A /srv/a', 'A /srv/a/b', 'C /var/log', 'A /var/log/new'].sort((a, b) => (a.slice(2) < b.slice(2) ? -1 : 1)));
});

t.test('a name in a lower layer below is found through several lowers; a type change is an addition', async (t) => {
  const base = tempDir(t);
  const [l1, l2, upper] = ['l1', 'l2', 'upper'].map((n) => path.join(base, n)) as [string, string, string];
  file(l2, 'deep/file');
  file(l1, 'top');
  fs.utimesSync(path.join(l2, 'deep'), T, T);
  fs.mkdirSync(upper);
  copyUpDir(l2, upper, 'deep');
  file(upper, 'deep/file', 'changed');
  fs.mkdirSync(path.join(upper, 'top'));
  settle(l2, upper, ['deep']);
  t.same(lines(upper, [l1, l2]), ['C /deep/file', 'A /top']);
});

t.test('whiteouts and opaque directories (root)', { skip: isRoot ? false : 'mknod and trusted.* xattrs need root' }, async (t) => {
  const base = tempDir(t);
  const [l1, l2, upper] = ['l1', 'l2', 'upper'].map((n) => path.join(base, n)) as [string, string, string];
  file(l2, 'etc/group');
  file(l2, 'etc/hidden-below');
  file(l2, 'keep/old');
  file(l1, 'keep/new');
  file(l1, 'gone-in-image');
  // the image's own whiteout (l1 hides l2's etc/hidden-below) is not the container's change
  fs.mkdirSync(path.join(l1, 'etc'));
  mknod(path.join(l1, 'etc', 'hidden-below'), S_IFCHR, 0, 0, 0);
  fs.mkdirSync(upper);
  copyUpDir(l2, upper, 'etc');
  mknod(path.join(upper, 'etc', 'group'), S_IFCHR, 0, 0, 0);
  mknod(path.join(upper, 'never-existed'), S_IFCHR, 0, 0, 0);
  fs.mkdirSync(path.join(upper, 'keep'));
  lsetxattr(path.join(upper, 'keep'), 'trusted.overlay.opaque', Buffer.from('y'));
  file(upper, 'keep/fresh');
  settle(l2, upper, ['etc']);
  // etc is unchanged itself but lost a name: C (docker's rule); keep was made anew (opaque)
  t.same(lines(upper, [l1, l2]), ['C /etc', 'D /etc/group', 'C /keep', 'A /keep/fresh', 'D /keep/new', 'D /keep/old']);
});
