/** Wire encoding: negative int64 timestamps, bare Any type URLs, always-present nullable fields. */
import t from 'tap';
import { decode, encode, fromTimestamp, packAny, parseRfc3339, formatRfc3339, u64, unpackAny, ZERO_TIME } from '../../../supervisor/proto/index';

t.test('Go zero time encodes as the 10-byte negative varint ctr sends', async (t) => {
  const bytes = encode('google.protobuf.Timestamp', ZERO_TIME);
  t.same([...bytes], [0x08, 0x80, 0x92, 0xb8, 0xc3, 0x98, 0xfe, 0xff, 0xff, 0xff, 0x01]);
  const back = fromTimestamp(decode('google.protobuf.Timestamp', bytes));
  t.same(back, ZERO_TIME);
});

t.test('a Container with zero created_at from ctr decodes', async (t) => {
  const raw = encode('containerd.services.containers.v1.Container', { id: 'x', createdAt: ZERO_TIME, updatedAt: { seconds: -1, nanos: 5 } });
  const c = decode<{ id: string; createdAt: { seconds: number; nanos: number }; updatedAt: { seconds: number; nanos: number } }>(
    'containerd.services.containers.v1.Container',
    raw,
  );
  t.equal(c.id, 'x');
  t.same(fromTimestamp(c.createdAt), ZERO_TIME);
  t.same(fromTimestamp(c.updatedAt), { seconds: -1, nanos: 5 });
  t.same(fromTimestamp(null), ZERO_TIME, 'absent is the zero time');
});

t.test('Any type URLs are bare message names', async (t) => {
  const any = packAny('containerd.events.TaskExit', { containerId: 'c', id: 'c', pid: 7, exitStatus: 137 });
  t.equal(any.typeUrl, 'containerd.events.TaskExit');
  const env = encode('containerd.services.events.v1.Envelope', { namespace: 'default', topic: '/tasks/exit', event: any });
  t.notMatch(env.toString('latin1'), 'type.googleapis.com', 'no googleapis prefix on the wire');
  const decoded = decode<{ event: { typeUrl: string; value: Uint8Array } }>('containerd.services.events.v1.Envelope', env);
  t.equal(decoded.event.typeUrl, 'containerd.events.TaskExit');
  const ev = unpackAny<{ containerId: string; pid: number; exitStatus: number }>(decoded.event);
  t.equal(ev.pid, 7);
  t.equal(ev.exitStatus, 137);
  t.equal(unpackAny<{ pid: number }>({ typeUrl: 'type.googleapis.com/containerd.events.TaskExit', value: any.value }).pid, 7, 'a prefixed URL still unpacks');
});

t.test('required nullable fields are encoded even when empty', async (t) => {
  const bytes = encode('containerd.services.tasks.v1.GetResponse', { process: {} });
  t.same([...bytes], [0x0a, 0x00], 'process present as an empty message');
  const lease = encode('containerd.services.leases.v1.CreateResponse', { lease: { id: 'l' } });
  t.ok(lease.length > 2);
});

t.test('uint64 values beyond 2^53 are exact', async (t) => {
  const bytes = encode('io.containerd.cgroups.v1.MemoryEntry', { limit: u64('9223372036854771712') });
  const back = decode<{ limit: { toString(): string } }>('io.containerd.cgroups.v1.MemoryEntry', bytes);
  t.equal(back.limit.toString(), '9223372036854771712');
  t.equal(u64(undefined), 0);
  t.equal(u64(12), 12);
});

t.test('RFC 3339 with nanoseconds round-trips', async (t) => {
  const ts = parseRfc3339('2024-05-01T10:00:00.123456789Z');
  t.same(ts, { seconds: 1714557600, nanos: 123456789 });
  t.equal(formatRfc3339(ts), '2024-05-01T10:00:00.123456789Z');
  t.same(parseRfc3339('2024-05-01T10:00:00Z'), { seconds: 1714557600, nanos: 0 });
  t.same(parseRfc3339('garbage'), ZERO_TIME);
});
