import t from 'tap';
import { MAX_ID, idProblem, mappingsProblem, parseIdFlag } from '../../../spec/ids';
import { TsrunError } from '../../../spec/errors';

t.test('ids are 0 to 2147483647', async (t) => {
  t.equal(MAX_ID, 2147483647);
  for (const ok of [0, 1, 1000, 65534, MAX_ID]) t.equal(idProblem(ok, 'uid'), undefined, `${ok} is a uid`);
  t.equal(idProblem(MAX_ID + 1, 'uid'), 'invalid uid 2147483648: uids and gids must be in range 0-2147483647');
  t.equal(idProblem(4294967295, 'gid'), 'invalid gid 4294967295: uids and gids must be in range 0-2147483647');
  t.equal(idProblem(-1, 'uid'), 'invalid uid -1: uids and gids must be in range 0-2147483647');
  t.equal(idProblem(1.5, 'uid'), 'invalid uid 1.5: uids and gids must be in range 0-2147483647');
});

t.test('mappings: starts are ids, ranges non-empty and never past the last mappable id', async (t) => {
  const m = (containerID: number, hostID: number, size: number) => [{ containerID, hostID, size }];
  t.equal(mappingsProblem(undefined, 'linux.uidMappings', 'uid'), undefined);
  t.equal(mappingsProblem(m(0, 100000, 65536), 'linux.uidMappings', 'uid'), undefined, 'the usual remap');
  t.equal(mappingsProblem(m(0, 0, 4294967295), 'linux.uidMappings', 'uid'), undefined, 'the whole initial range (0 0 4294967295) is fine');
  t.equal(mappingsProblem(m(4294967295, 0, 1), 'x', 'uid'), 'x[0].containerID: invalid uid 4294967295: uids and gids must be in range 0-2147483647');
  t.equal(mappingsProblem(m(0, 4294967295, 1), 'x', 'gid'), 'x[0].hostID: invalid gid 4294967295: uids and gids must be in range 0-2147483647');
  t.equal(mappingsProblem(m(0, 0, 0), 'x', 'uid'), 'x[0].size: must be at least 1');
  t.equal(mappingsProblem(m(1, 0, 4294967295), 'x', 'uid'), 'x[0]: containerID 1 + size 4294967295 runs past the last uid');
  t.equal(mappingsProblem([...m(0, 1000, 1), ...m(1, 2147483647, 2147483649)], 'x', 'uid'), 'x[1]: hostID 2147483647 + size 2147483649 runs past the last uid');
});

t.test('id flags: digits only, then the range', async (t) => {
  t.equal(parseIdFlag('0', '--user', 'uid'), 0);
  t.equal(parseIdFlag('2147483647', '--user', 'uid'), 2147483647);
  t.throws(() => parseIdFlag('4294967295', '--user', 'uid'), new TsrunError('InvalidArgument', '--user: invalid uid 4294967295: uids and gids must be in range 0-2147483647'));
  t.throws(() => parseIdFlag('-1', '--additional-gids', 'gid'), new TsrunError('InvalidArgument', '--additional-gids: invalid gid "-1": want a number'));
  t.throws(() => parseIdFlag('', '--user', 'uid'), new TsrunError('InvalidArgument', '--user: invalid uid "": want a number'));
  t.throws(() => parseIdFlag('1e3', '--user', 'uid'), { code: 'InvalidArgument' });
});
