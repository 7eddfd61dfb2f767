import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';

interface BundleCjs {
  parse(argv: string[]): Record<string, unknown> & { banner?: { js: string }; footer?: { js: string } };
  snapshotRequire(req: (id: string) => unknown): (id: string) => unknown;
  SNAPSHOT_WRAP: { banner: string; footer: string };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS build script, loaded as the Makefile runs it
const bundle = require('../../../scripts/bundle.cjs') as BundleCjs;

t.test('snapshotRequire: koffi from beside the script, child_process on first use, the rest as is', async (t) => {
  const asked: string[] = [];
  const req = (id: string): unknown => {
    asked.push(id);
    if (id === 'node:module') return { createRequire: (from: string) => (m: string) => `${m} resolved from ${from}` };
    if (id === 'node:child_process') return { spawnSync: 'the real spawnSync' };
    return `module ${id}`;
  };
  const r = bundle.snapshotRequire(req);
  t.equal(r('node:fs'), 'module node:fs', 'other modules: the given require');
  t.equal(r('koffi'), `koffi resolved from ${process.argv[1]}`, 'koffi: resolved from the running script (bin/tsrun.js), not the builder');
  const before = asked.length;
  const child = r('node:child_process') as { spawnSync: unknown };
  t.equal(asked.length, before, 'node:child_process: not loaded when the bundle starts (snapshots do not support it)');
  t.equal(child.spawnSync, 'the real spawnSync', 'but on first use');
  t.equal(asked[asked.length - 1], 'node:child_process');
});

t.test('--snapshot-require wraps the bundle; other flags pass through, unknown ones are refused', async (t) => {
  const o = bundle.parse(['entry.ts', '--bundle', '--outfile=out.js', '--snapshot-require']);
  t.equal(o.banner?.js, bundle.SNAPSHOT_WRAP.banner);
  t.equal(o.footer?.js, bundle.SNAPSHOT_WRAP.footer);
  t.notOk('snapshotRequire' in o, 'not passed to esbuild');
  t.throws(() => bundle.parse(['entry.ts', '--outfile=o.js', '--snapshot-require', '--banner:js=x']), /own banner/);
  t.throws(() => bundle.parse(['entry.ts', '--outfile=o.js', '--minify']), /unsupported flag --minify/);
});

t.test('a wrapped bundle runs, and finds koffi beside the script', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-bundle-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const entry = path.join(dir, 'entry.js');
  fs.writeFileSync(entry, "const k = require('koffi'); const cp = require('node:child_process'); console.log(typeof k.load, typeof cp.spawnSync);\n");
  const out = path.join(dir, 'bin', 'out.js');
  const root = path.resolve(__dirname, '..', '..', '..');
  execFileSync(process.execPath, [path.join(root, 'scripts', 'bundle.cjs'), entry, '--bundle', '--platform=node', '--format=cjs', '--external:koffi', '--log-level=warning', '--snapshot-require', `--outfile=${out}`], { cwd: root, timeout: 60_000 });
  // koffi is looked up from the bundle's own directory, as bin/tsrun.js finds node_modules beside bin/.
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  t.equal(execFileSync(process.execPath, [out], { encoding: 'utf8', timeout: 30_000 }).trim(), 'function function');
});
