import t from 'tap';
import { encodePlan } from '../../../../runtime/plan/encode';
import { OP, PLAN_MAGIC, PLAN_VERSION } from '../../../../runtime/plan/ops';

t.test('header and op framing follow ops.ts', async (t) => {
  const b = encodePlan({ version: PLAN_VERSION, ops: [{ op: 'UMASK', mask: 0o22 }, { op: 'EXEC' }] });
  t.equal(b.readUInt32LE(0), PLAN_MAGIC, 'magic');
  t.equal(b.readUInt32LE(4), PLAN_VERSION, 'version');
  t.equal(b.readUInt32LE(8), 2, 'op count');
  t.equal(b.readUInt32LE(12), b.length, 'total length');
  t.equal(b.readUInt16LE(16), OP.UMASK, 'first op code');
  t.equal(b.readUInt16LE(18), 0, 'reserved');
  t.equal(b.readUInt32LE(20), 4, 'payload length');
  t.equal(b.readUInt32LE(24), 0o22, 'u32 field');
  t.equal(b.readUInt16LE(28), OP.EXEC, 'second op code');
  t.equal(b.readUInt32LE(32), 0, 'empty payload');
});

t.test('strings, lists and u64 fields', async (t) => {
  const b = encodePlan({
    version: PLAN_VERSION,
    ops: [{ op: 'PROCESS', args: ['/bin/sh', 'é'], env: [], default_path: '/bin' }, { op: 'RLIMIT', resource: 7, soft: 0xffffffffffffffffn, hard: 1n }],
  });
  let o = 16 + 8;
  t.equal(b.readUInt32LE(o), 2, 'strlist count');
  o += 4;
  t.equal(b.readUInt32LE(o), 7, 'str length excludes NUL');
  t.equal(b.subarray(o + 4, o + 11).toString(), '/bin/sh');
  t.equal(b[o + 11], 0, 'NUL terminated');
  o += 12;
  t.equal(b.readUInt32LE(o), 2, 'utf-8 byte length');
  const rl = b.indexOf(Buffer.from([OP.RLIMIT, 0, 0, 0]), 16 + 8);
  t.ok(rl > 0, 'rlimit op present');
  t.equal(b.readBigUInt64LE(rl + 8 + 4), 0xffffffffffffffffn, 'u64 max survives');
});

t.test('bad values are refused with the field named', async (t) => {
  t.throws(() => encodePlan({ version: 1, ops: [{ op: 'HOSTNAME', name: 'a\0b' }] }), /HOSTNAME.name "a\\u0000b" contains a NUL byte/);
  t.throws(() => encodePlan({ version: 1, ops: [{ op: 'UMASK', mask: -1 }] }), /UMASK.mask has a value of the wrong kind/);
  t.throws(() => encodePlan({ version: 1, ops: [{ op: 'UMASK', mask: 1.5 }] }), /wrong kind/);
});

t.test('bytes fields carry NULs', async (t) => {
  const filter = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0]);
  const b = encodePlan({ version: 1, ops: [{ op: 'SECCOMP', flags: 0, filter }, { op: 'EXEC' }] });
  t.equal(b.readUInt32LE(16 + 8 + 4), 8, 'byte length');
});
