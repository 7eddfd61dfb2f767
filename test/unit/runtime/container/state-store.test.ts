import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkId, containerPaths, createContainerDir, listIds, publishContainerDir, readState, removeContainerDir, sweepHidden, writeState, STATE_VERSION, type ContainerState } from '../../../../runtime/container/state-store';

const sample = (id: string): ContainerState => ({
  version: STATE_VERSION, ociVersion: '1.2.0', id, pid: 1234, pidStartTime: '5678', bundle: '/b', rootfs: '/b/rootfs',
  created: '2026-11-23T13:09:42.786Z', owner: '', annotations: {}, hooks: { poststart: [], poststop: [] }, namespaces: {}, processScope: 'pid',
});

t.test('create, write, read, list, remove', async (t) => {
  const root = path.join(t.testdir(), 'root');
  const p = createContainerDir(root, 'c1');
  t.equal(fs.statSync(root).mode & 0o777, 0o700, 'root is private');
  t.throws(() => createContainerDir(root, 'c1'), { code: 'AlreadyExists', message: 'container with id c1 already exists' });
  t.throws(() => readState(root, 'c1'), { code: 'NotFound', message: 'container does not exist' }, 'no state.json yet');
  writeState(root, sample('c1'));
  t.same(readState(root, 'c1'), sample('c1'));
  t.same(fs.readdirSync(p.dir).sort(), ['state.json'], 'no temp file left behind');
  createContainerDir(root, 'c0');
  t.same(listIds(root), ['c0', 'c1']);
  removeContainerDir(root, 'c1');
  t.notOk(fs.existsSync(p.dir));
  t.same(listIds(root), ['c0']);
  removeContainerDir(root, 'c1');
  t.pass('removing twice is fine');
});

t.test('a state of another version is refused', async (t) => {
  const root = t.testdir();
  const p = createContainerDir(root, 'v');
  fs.writeFileSync(p.state, JSON.stringify({ ...sample('v'), version: 99 }));
  t.throws(() => readState(root, 'v'), { code: 'FailedPrecondition', message: `read ${p.state}: state version 99 is not 1` });
  fs.writeFileSync(p.state, '{"trunc');
  t.throws(() => readState(root, 'v'), /not valid JSON/);
});

t.test('ids', async (t) => {
  for (const ok of ['a', 'A-b_c.d+e', '0'.repeat(64)]) t.doesNotThrow(() => checkId(ok), ok);
  for (const bad of ['', '.', '..', 'a/b', 'a b', '../x', 'x\0']) t.throws(() => checkId(bad), { code: 'InvalidArgument' }, JSON.stringify(bad));
  t.equal(containerPaths('/r', 'x').fifo, '/r/x/exec.fifo');
});

t.test('publish: the directory appears whole, with its record and a held lock; a taken id is refused', async (t) => {
  const root = path.join(t.testdir(), 'root');
  const locks: string[] = [];
  const lockAt = (file: string) => {
    fs.writeFileSync(file, '');
    locks.push(file);
    return { release: () => undefined };
  };
  const { paths } = publishContainerDir(root, sample('p1'), lockAt);
  t.same(fs.readdirSync(paths.dir).sort(), ['lock', 'state.json'], 'lock and record, nothing else');
  t.same(readState(root, 'p1'), sample('p1'));
  t.same(fs.readdirSync(root), ['p1'], 'no hidden directory left');
  t.throws(() => publishContainerDir(root, sample('p1'), lockAt), { code: 'AlreadyExists', message: 'container with id p1 already exists' });
  t.same(fs.readdirSync(root), ['p1'], 'the refused publish left nothing');
});

t.test('sweepHidden removes what a dead create or delete left, and nothing else', async (t) => {
  const root = t.testdir();
  const dead = 2 ** 22 + 1; // above the default pid_max: no such process
  for (const n of [`.c.creating-${dead}`, `.c.deleting-${dead}`, `.c.creating-${process.pid}`, `.cc.creating-${dead}`, 'c']) fs.mkdirSync(path.join(root, n));
  sweepHidden(root, 'c');
  t.same(fs.readdirSync(root).sort(), [`.c.creating-${process.pid}`, `.cc.creating-${dead}`, 'c']);
});
