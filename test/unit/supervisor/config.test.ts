/** tsrund flags and config file: defaults, file, flags over file, errors. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { parseArgs } from '../../../supervisor/config';
import { thrown } from '../../helpers/thrown';

t.test('defaults', async (t) => {
  const r = parseArgs([]);
  if (r.kind !== 'run') throw new Error('want run');
  t.equal(r.config.socket, '/run/tsrund/tsrund.sock');
  t.equal(r.config.root, '/var/lib/tsrund');
  t.equal(r.config.shimRoot, '/run/tsrund/shims');
  t.equal(r.config.runtime, 'library');
  t.equal(r.config.logLevel, 'info');
  t.equal(parseArgs(['--help']).kind, 'help');
  t.equal(parseArgs(['-v']).kind, 'version');
});

t.test('config file, then flags over it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrund-cfg-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ socket: '/a.sock', state: '/st', runtime: '/usr/sbin/runc', logLevel: 'debug', allowUids: [1000] }));
  const r = parseArgs(['--config', file, '--address=unix:///b.sock', '--log-level', 'warn']);
  if (r.kind !== 'run') throw new Error('want run');
  t.equal(r.config.socket, '/b.sock');
  t.equal(r.config.shimRoot, '/st/shims');
  t.equal(r.config.runtime, '/usr/sbin/runc');
  t.equal(r.config.logLevel, 'warn');
  t.same(r.config.allowUids, [1000]);
  fs.writeFileSync(file, JSON.stringify({ insecureRegistries: ['reg.lan:5000', '10.0.0.0/8'] }));
  const ir = parseArgs(['--config', file]);
  if (ir.kind !== 'run') throw new Error('want run');
  t.same(ir.config.insecureRegistries, ['reg.lan:5000', '10.0.0.0/8']);
  fs.writeFileSync(file, JSON.stringify({ insecureRegistries: 'reg.lan' }));
  t.match(thrown(() => parseArgs(['--config', file])).message, 'insecureRegistries must be a list');
  fs.writeFileSync(file, JSON.stringify({ nope: 1 }));
  t.match(thrown(() => parseArgs(['--config', file])).message, 'unknown key "nope"');
  t.match(thrown(() => parseArgs(['--log-level', 'loud'])).message, 'is not one of');
  t.match(thrown(() => parseArgs(['--root'])).message, 'needs a value');
  t.match(thrown(() => parseArgs(['--what'])).message, 'unknown flag');
});

t.test('shim: native by default, node by flag or file, anything else refused', async (t) => {
  const d = parseArgs([]);
  if (d.kind !== 'run') throw new Error('want run');
  t.equal(d.config.shim, 'native');
  const f = parseArgs(['--shim', 'node']);
  if (f.kind !== 'run') throw new Error('want run');
  t.equal(f.config.shim, 'node');
  t.match(thrown(() => parseArgs(['--shim', 'c'])).message, '--shim "c" is not node or native');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrund-cfg-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ shim: 'node' }));
  const c = parseArgs(['--config', file]);
  if (c.kind !== 'run') throw new Error('want run');
  t.equal(c.config.shim, 'node');
  fs.writeFileSync(file, JSON.stringify({ shim: 1 }));
  t.match(thrown(() => parseArgs(['--config', file])).message, 'shim must be "node" or "native"');
});
