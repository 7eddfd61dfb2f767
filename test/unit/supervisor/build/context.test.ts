/** Build context reads: symlinks must stay inside, globs, .dockerignore, content digests. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { resolveInContext, resolveSources, sourceDigest, walkSource } from '../../../../supervisor/build/context';
import { parseDockerignore } from '../../../../supervisor/build/dockerignore';

function context(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-ctx-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'd', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'd', 'a.txt'), 'a');
  fs.writeFileSync(path.join(dir, 'd', 'sub', 'b.txt'), 'b');
  fs.writeFileSync(path.join(dir, 'x.txt'), 'x');
  fs.writeFileSync(path.join(dir, 'y.md'), 'y');
  fs.symlinkSync('d/a.txt', path.join(dir, 'inside'));
  fs.symlinkSync('d', path.join(dir, 'dirlink'));
  fs.symlinkSync('/etc/passwd', path.join(dir, 'abs'));
  fs.symlinkSync('../../etc/passwd', path.join(dir, 'd', 'climb'));
  return dir;
}

t.test('symlinks resolve inside the context or are refused naming the link', async (t) => {
  const dir = context(t);
  t.equal(resolveInContext(dir, 'inside').host, path.join(dir, 'd', 'a.txt'));
  t.equal(resolveInContext(dir, 'dirlink/sub/b.txt').rel, 'd/sub/b.txt');
  t.throws(() => resolveInContext(dir, 'abs'), /the symlink abs -> \/etc\/passwd leaves the build context/);
  t.throws(() => resolveInContext(dir, 'd/climb'), /the symlink d\/climb -> \.\.\/\.\.\/etc\/passwd leaves the build context/);
  t.throws(() => resolveInContext(dir, '../x'), /forbidden path outside the build context/);
  t.equal(resolveInContext(dir, 'd/../x.txt').rel, 'x.txt', '.. inside the context is fine');
});

t.test('globs and .dockerignore; a directory walk copies symlinks as links', async (t) => {
  const dir = context(t);
  const root = { dir, isContext: true, ignore: parseDockerignore('*.md\nd/sub\n') };
  t.same(resolveSources(root, '*.txt').map((s) => s.rel), ['x.txt']);
  t.throws(() => resolveSources(root, 'y.md'), /file not found in build context or excluded by \.dockerignore/);
  t.throws(() => resolveSources(root, '*.none'), /matches nothing/);
  const [d] = resolveSources(root, 'd');
  t.same(walkSource(root, d!).map((e) => e.rel), ['a.txt', 'climb'], 'ignored d/sub left out; the climbing link is an entry, not followed');
  t.ok(walkSource(root, d!)[1]!.st.isSymbolicLink());
});

t.test('the content digest changes with content and mode, not with mtime', async (t) => {
  const dir = context(t);
  const root = { dir, isContext: true };
  const digest = (): string => sourceDigest(walkSource(root, resolveSources(root, 'd')[0]!));
  const first = digest();
  fs.utimesSync(path.join(dir, 'd', 'a.txt'), new Date(0), new Date(0));
  t.equal(digest(), first, 'mtime is not part of it');
  fs.writeFileSync(path.join(dir, 'd', 'a.txt'), 'A');
  const second = digest();
  t.not(second, first, 'content is');
  fs.chmodSync(path.join(dir, 'd', 'a.txt'), 0o600);
  t.not(digest(), second, 'mode is');
});
