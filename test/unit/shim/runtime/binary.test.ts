import t from 'tap';
import { codeForRuntimeMessage, lastLogError, parseJsonKeepingBigints } from '../../../../shim/runtime/binary';

t.test('the last error line of a JSON log', async (t) => {
  const log = [
    '{"level":"warning","msg":"w","time":"x"}',
    '{"level":"error","msg":"first","time":"x"}',
    'not json',
    '{"level":"error","msg":"container_linux.go:380: starting container process caused: exec: \\"nope\\": executable file not found in $PATH","time":"x"}',
    '{"level":"info","msg":"later","time":"x"}',
    '',
  ].join('\n');
  t.equal(lastLogError(log), 'container_linux.go:380: starting container process caused: exec: "nope": executable file not found in $PATH');
  t.equal(lastLogError('{"level":"info","msg":"x"}'), undefined);
});

t.test('runtime messages map to error codes', async (t) => {
  t.equal(codeForRuntimeMessage('container "x" does not exist'), 'NotFound');
  t.equal(codeForRuntimeMessage('container with id exists: x already exists'), 'AlreadyExists');
  t.equal(codeForRuntimeMessage('container not running'), 'FailedPrecondition');
  t.equal(codeForRuntimeMessage('cannot delete container x that is not stopped: running'), 'FailedPrecondition');
  t.equal(codeForRuntimeMessage('open /x: permission denied'), 'PermissionDenied');
  t.equal(codeForRuntimeMessage('something broke'), 'Internal');
});

t.test('counters beyond a double stay exact', async (t) => {
  const v = parseJsonKeepingBigints('{"memory":{"usage":{"limit":9223372036854771712,"usage":4096}},"l":[18446744073709551615, 1]}') as {
    memory: { usage: { limit: unknown; usage: unknown } };
    l: unknown[];
  };
  t.equal(v.memory.usage.limit, '9223372036854771712');
  t.equal(v.memory.usage.usage, 4096);
  t.same(v.l, ['18446744073709551615', 1]);
});
