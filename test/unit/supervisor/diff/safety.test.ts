/**
 * Extraction never writes outside its root: each crafted layer is refused with an error naming the
 * entry and why, and nothing appears outside the root.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { applyLayer } from '../../../../supervisor/diff/apply';
import { listTree, packLayer, rawFile, rawHeader, rawTar, streamOf, tempDir } from '../../../helpers/layers';

const OCI_TAR = 'application/vnd.oci.image.layer.v1.tar';

/** A scratch dir holding `root` and a sibling `outside` the layer tries to reach. */
function arena(t: Parameters<typeof tempDir>[0]): { root: string; outside: string } {
  const base = tempDir(t, 'tsrun-safety-');
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'secret');
  return { root, outside };
}

async function refuses(t: Test, tar: Buffer, mode: 'apply' | 'overlay', message: RegExp, root: string, outside: string): Promise<void> {
  await t.rejects(applyLayer(streamOf(tar), root, { mediaType: OCI_TAR, whiteouts: mode }), { message });
  t.same(fs.readdirSync(outside), ['secret'], 'nothing written outside the root');
  t.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'secret', 'the outside file is untouched');
}

t.test('a ".." name is refused (raw header)', async (t) => {
  const { root, outside } = arena(t);
  await refuses(t, rawTar(rawFile('../outside/evil', 'x')), 'apply', /entry "\.\.\/outside\/evil": refused: name .* has a "\.\." component/, root, outside);
  await refuses(t, rawTar(rawFile('a/../../outside/evil', 'x')), 'apply', /has a "\.\." component/, root, outside);
});

t.test('a ".." name is refused (tar-stream pack)', async (t) => {
  const { root, outside } = arena(t);
  await refuses(t, await packLayer([{ name: '../outside/evil2', body: 'x' }]), 'overlay', /refused: name .* "\.\." component/, root, outside);
});

t.test('an absolute name is read relative to the root, as containerd and docker do', async (t) => {
  const { root, outside } = arena(t);
  const abs = path.join(outside, 'abs-evil');
  await applyLayer(streamOf(rawTar(rawFile(abs, 'x'))), root, { mediaType: OCI_TAR, whiteouts: 'apply' });
  t.notOk(fs.existsSync(abs), 'nothing at the absolute host path');
  t.equal(fs.readFileSync(path.join(root, abs), 'utf8'), 'x', 'written under the root instead');
});

t.test('writing through a symlink made by the same layer is refused', async (t) => {
  const { root, outside } = arena(t);
  const tar = await packLayer([
    { name: 'escape', type: 'symlink', linkname: outside },
    { name: 'escape/evil', body: 'x' },
  ]);
  await refuses(t, tar, 'overlay', /entry "escape\/evil": refused: parent "escape" is a symlink/, root, outside);
  const rel = await packLayer([
    { name: 'd', type: 'directory' },
    { name: 'd/up', type: 'symlink', linkname: '../../outside' },
    { name: 'd/up/evil', body: 'x' },
  ]);
  await refuses(t, rel, 'apply', /entry "d\/up\/evil": refused: parent "d\/up" is a symlink/, root, outside);
});

t.test('writing through a symlink already in the root is refused', async (t) => {
  const { root, outside } = arena(t);
  fs.symlinkSync(outside, path.join(root, 'lib'));
  await refuses(t, await packLayer([{ name: 'lib/evil', body: 'x' }]), 'apply', /entry "lib\/evil": refused: parent "lib" is a symlink/, root, outside);
  await refuses(t, await packLayer([{ name: 'lib/.wh.secret', body: '' }]), 'apply', /parent "lib" is a symlink/, root, outside);
  await refuses(t, await packLayer([{ name: 'lib/.wh..wh..opq', body: '' }]), 'apply', /parent "lib" is a symlink/, root, outside);
});

t.test('a symlink as the last component is replaced, never written through', async (t) => {
  const { root, outside } = arena(t);
  await applyLayer(
    streamOf(await packLayer([{ name: 'f', type: 'symlink', linkname: path.join(outside, 'secret') }, { name: 'f', body: 'new' }])),
    root,
    { mediaType: OCI_TAR, whiteouts: 'apply' },
  );
  t.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'secret');
  t.same(listTree(root), ['f f']);
});

t.test('hard links that leave the root are refused', async (t) => {
  const { root, outside } = arena(t);
  await refuses(t, rawTar(rawHeader('h', '1', { linkname: '../outside/secret' })), 'apply', /entry "h": refused: link target .* "\.\." component/, root, outside);
  // an absolute target is read inside the root, where it does not exist
  await refuses(t, rawTar(rawHeader('h', '1', { linkname: path.join(outside, 'secret') })), 'apply', /entry "h": refused: hard link target .* does not exist/, root, outside);
  const through = await packLayer([
    { name: 'out', type: 'symlink', linkname: outside },
    { name: 'h', type: 'link', linkname: 'out/secret' },
  ]);
  await refuses(t, through, 'overlay', /entry "h": refused: parent "out" is a symlink/, root, outside);
  t.equal(fs.statSync(path.join(outside, 'secret')).nlink, 1, 'no second link to the outside file');
});

t.test('a hard link to a symlink links the symlink itself', async (t) => {
  const { root, outside } = arena(t);
  await applyLayer(
    streamOf(await packLayer([{ name: 's', type: 'symlink', linkname: path.join(outside, 'secret') }, { name: 'h', type: 'link', linkname: 's' }])),
    root,
    { mediaType: OCI_TAR, whiteouts: 'apply' },
  );
  t.ok(fs.lstatSync(path.join(root, 'h')).isSymbolicLink());
  t.equal(fs.statSync(path.join(outside, 'secret')).nlink, 1);
});

t.test('a whiteout naming ".." and the root as a non-directory are refused', async (t) => {
  const { root, outside } = arena(t);
  await refuses(t, rawTar(rawFile('a/.wh...', '')), 'apply', /whiteout names no file|"\.\." component/, root, outside);
  await refuses(t, rawTar(rawFile('./', 'x')), 'apply', /layer root can only be a directory/, root, outside);
});
