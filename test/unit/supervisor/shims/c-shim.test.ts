/** The native shim's control frames as tsrund encodes them (layout of shim/native/proto.h). */
import t from 'tap';
import { encodeRequest } from '../../../../supervisor/shims/c-shim';
import { thrown } from '../../../helpers/thrown';

t.test('a request frame: length prefix, id, kind, type, then tag/length/value fields', async (t) => {
  const f = encodeRequest(7, 3, [
    [1, 'init'],
    [2, '/usr/sbin/runc'],
    [7, 1],
    [10, 5n],
  ]);
  t.equal(f.readUInt32BE(0), f.length - 4, 'the length prefix counts the body');
  t.equal(f.readUInt32BE(4), 7, 'id');
  t.same([f[8], f[9]], [1, 3], 'kind request, type');
  let pos = 10;
  const fields: Array<[number, Buffer]> = [];
  while (pos < f.length) {
    const n = f.readUInt16BE(pos + 1);
    fields.push([f[pos]!, f.subarray(pos + 3, pos + 3 + n)]);
    pos += 3 + n;
  }
  t.equal(pos, f.length, 'fields end with the frame');
  t.same(fields.map(([tag]) => tag), [1, 2, 7, 10], 'tags in order');
  t.equal(fields[0]![1].toString(), 'init');
  t.equal(fields[1]![1].toString(), '/usr/sbin/runc');
  t.same([...fields[2]![1]], [0, 0, 0, 1], 'TERMINAL is a big-endian u32');
  t.equal(fields[3]![1].readBigUInt64BE(0), 5n, 'LOG_MAX is a big-endian u64');
});

t.test('a field or frame too big for the shim is refused before it is sent', async (t) => {
  t.match(thrown(() => encodeRequest(1, 3, [[2, 'x'.repeat(70_000)]])).message, 'at most 65535');
  const many = Array.from({ length: 40 }, (): [number, string] => [2, 'y'.repeat(2000)]);
  t.match(thrown(() => encodeRequest(1, 3, many)).message, 'at most 65536');
});
