/** containerd's filter language: ==, !=, ~=, presence, quoting, "," = and, several filters = or. */
import t from 'tap';
import { objectAdaptor, parseFilters } from '../../../supervisor/events/filters';
import { thrown } from '../../helpers/thrown';

const env = (topic: string, namespace: string, event: Record<string, unknown> = {}) =>
  objectAdaptor({ topic, namespace, event });

t.test('operators', async (t) => {
  t.ok(parseFilters(['topic=="/tasks/exit"'])(env('/tasks/exit', 'a')));
  t.notOk(parseFilters(['topic=="/tasks/exit"'])(env('/tasks/start', 'a')));
  t.ok(parseFilters(['topic!=/tasks/exit'])(env('/tasks/start', 'a')));
  t.ok(parseFilters(['topic~="/tasks/"'])(env('/tasks/start', 'a')));
  t.notOk(parseFilters(['topic~="^/containers/"'])(env('/tasks/start', 'a')));
  t.ok(parseFilters(['topic~=/tasks/(start|exit)'])(env('/tasks/exit', 'a')), 'bare regexp with slashes');
  t.ok(parseFilters(['event.container_id==c1'])(env('/tasks/exit', 'a', { containerId: 'c1' })), 'snake_case reaches camelCase fields');
  t.ok(parseFilters(['event.container_id'])(env('/tasks/exit', 'a', { containerId: 'c1' })), 'presence');
  t.notOk(parseFilters(['event.exec_id'])(env('/tasks/exit', 'a', { containerId: 'c1' })), 'absence');
});

t.test('and within a filter, or between filters, empty matches all', async (t) => {
  const f = parseFilters(['topic~="/tasks/",namespace==a', 'namespace==b']);
  t.ok(f(env('/tasks/exit', 'a')));
  t.notOk(f(env('/containers/create', 'a')));
  t.ok(f(env('/containers/create', 'b')));
  t.ok(parseFilters([])(env('/x', 'y')));
  t.ok(parseFilters([''])(env('/x', 'y')));
});

t.test('labels take the rest of the path as the key', async (t) => {
  const a = objectAdaptor({ id: 'c', labels: { 'io.x.y': '1', k: 'v' } });
  t.ok(parseFilters(['labels."io.x.y"==1'])(a));
  t.ok(parseFilters(['labels.io.x.y==1'])(a));
  t.ok(parseFilters(['labels.k==v,id==c'])(a));
  t.notOk(parseFilters(['labels.k==w'])(a));
});

t.test('syntax errors are InvalidArgument', async (t) => {
  for (const bad of ['topic=="/unterminated', 'topic~="("', '==x', 'topic==']) {
    const e = thrown(() => parseFilters([bad]));
    t.equal((e as { code?: string }).code, 'InvalidArgument', bad);
  }
});
