import t from 'tap';
import { MAX_FRAME_BYTES, frameBytes, frameReader } from '../../../../shim/protocol/framing';
import { decodeFrame, encodeFrame } from '../../../../shim/protocol/messages';

t.test('frames split and join across chunk boundaries', async (t) => {
  const a = frameBytes(Buffer.from('hello'));
  const b = frameBytes(Buffer.from(''));
  const c = frameBytes(Buffer.alloc(70_000, 7));
  const all = Buffer.concat([a, b, c]);
  const r = frameReader();
  const got: Buffer[] = [];
  for (let i = 0; i < all.length; i += 3333) got.push(...r.push(all.subarray(i, i + 3333)));
  t.same(got.map((g) => g.length), [5, 0, 70_000]);
  t.equal(got[0]!.toString(), 'hello');
  t.equal(r.pending(), 0);
});

t.test('an oversized frame is refused', async (t) => {
  const r = frameReader();
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
  t.throws(() => r.push(hdr), { code: 'InvalidArgument', message: /larger than/ });
});

t.test('request, response and event frames round-trip', async (t) => {
  const req = decodeFrame(encodeFrame({ id: 9, request: { method: 'exec', execId: 'e1', processJson: Buffer.from('{"args":["x"]}'), stdio: { stdin: '/a', stdout: '/b', stderr: '', terminal: true } } }));
  t.equal(req.id, 9);
  t.equal(req.request?.method, 'exec');
  t.equal(req.request?.execId, 'e1');
  t.equal(Buffer.from(req.request!.processJson!).toString(), '{"args":["x"]}');
  t.same(req.request?.stdio, { stdin: '/a', stdout: '/b', stderr: '', terminal: true });
  t.notOk(req.response);

  const resp = decodeFrame(encodeFrame({ id: 10, response: { errorCode: 'NotFound', errorMessage: 'process already finished' } }));
  t.same([resp.response?.errorCode, resp.response?.errorMessage], ['NotFound', 'process already finished']);

  const ev = decodeFrame(encodeFrame({ id: 0, event: { type: 'exit', exit: { execId: '', pid: 42, exitStatus: 137, exitedAt: '2024-01-01T00:00:00.5Z' } } }));
  t.same(ev.event?.exit, { execId: '', pid: 42, exitStatus: 137, exitedAt: '2024-01-01T00:00:00.5Z' });
  t.equal(ev.event?.type, 'exit');

  const list = decodeFrame(encodeFrame({ id: 3, response: { processes: [{ execId: '', pid: 1, status: 'running', hasExit: false, exitStatus: 0, exitedAt: '' }, { execId: 'e', pid: 2, status: 'stopped', hasExit: true, exitStatus: 3, exitedAt: 'x' }] } }));
  t.same(list.response?.processes?.map((p) => [p.execId, p.pid, p.status, p.hasExit, p.exitStatus]), [['', 1, 'running', false, 0], ['e', 2, 'stopped', true, 3]]);
});
