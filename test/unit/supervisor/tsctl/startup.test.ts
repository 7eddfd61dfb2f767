/**
 * tsctl's start-up (supervisor/tsctl/startup/): the snapshot's warm-up of the hot methods'
 * messages (warmClient with HOT_METHODS), run here in a fresh process as the snapshot builder
 * runs it.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import t from 'tap';
import { HOT_METHODS } from '../../../../supervisor/tsctl/startup/hot';

const ROOT = path.resolve(__dirname, '../../../..');

/** Run `body` (with `client`, `protoRoot` and `protobuf` in scope) in a fresh node; its stdout. */
function fresh(body: string): string {
  const script = `
    const client = require(${JSON.stringify(path.join(ROOT, 'supervisor/client'))});
    const { protoRoot } = require(${JSON.stringify(path.join(ROOT, 'supervisor/proto/index'))});
    const protobuf = require('protobufjs');
    ${body}`;
  return execFileSync(process.execPath, [...process.execArgv, '-e', script], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

t.test('HOT_METHODS name methods that exist, once each', async (t) => {
  t.equal(new Set(HOT_METHODS).size, HOT_METHODS.length);
  t.doesNotThrow(() => fresh(`client.warmClient(${JSON.stringify(HOT_METHODS)});`));
});

t.test('an unknown method fails the warm-up', async (t) => {
  for (const bad of ['Tasks.NoSuchMethod', 'NoSuchService.Get', 'Tasks']) {
    t.throws(() => fresh(`client.warmClient([${JSON.stringify(bad)}]);`), bad);
  }
});

t.test('the warm-up generates the code of the hot messages and their parts, and no other', async (t) => {
  // a set-up Type has replaced its lazy encode (the prototype's) with generated code of its own
  const out = fresh(`
    client.warmClient(['Tasks.Create']);
    const ready = [];
    const walk = (ns) => { for (const o of ns.nestedArray) { if (o instanceof protobuf.Type && Object.hasOwn(o, 'encode')) ready.push(o.fullName); if (o.nestedArray) walk(o); } };
    walk(protoRoot());
    process.stdout.write(JSON.stringify(ready.sort()));`);
  const ready = JSON.parse(out) as string[];
  t.ok(ready.includes('.containerd.services.tasks.v1.CreateTaskRequest'), 'request');
  t.ok(ready.includes('.containerd.services.tasks.v1.CreateTaskResponse'), 'response');
  t.ok(ready.includes('.containerd.types.Mount'), 'a message inside the request');
  t.notOk(ready.includes('.containerd.services.images.v1.Image'), 'a message of another method');
});

t.test('after the warm-up, messages still encode, decode, verify and convert', async (t) => {
  const out = fresh(`
    client.warmClient(['Tasks.Create']);
    const T = protoRoot().lookupType('containerd.services.tasks.v1.CreateTaskRequest');
    const own = ['encode', 'decode', 'verify', 'fromObject', 'toObject'].filter((k) => Object.hasOwn(T, k));
    const msg = T.decode(T.encode({ containerId: 'c1', rootfs: [{ type: 'overlay', source: 'x' }] }).finish());
    const obj = T.toObject(T.fromObject({ containerId: 'c2' }));
    process.stdout.write(JSON.stringify({ own, id: msg.containerId, mount: msg.rootfs[0].type, json: msg.toJSON().containerId, obj: obj.containerId, ok: T.verify({ containerId: 'c3' }) }));`);
  t.same(JSON.parse(out), { own: ['encode', 'decode'], id: 'c1', mount: 'overlay', json: 'c1', obj: 'c2', ok: null });
});
