/**
 * The exchange's start-up backlog: what is published before serving and in the window after it
 * is replayed to later subscribers; an envelope published before serving that nobody has had yet
 * outlives the window until the hold ends (a client that waits for the exits missed while tsrund
 * was down may subscribe late on a loaded machine), one that a subscriber already had does not,
 * and nothing published while serving is replayed after the window.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createExchange, type Envelope } from '../../../supervisor/events/exchange';
import { parseFilters } from '../../../supervisor/events/filters';

function collect(ex: ReturnType<typeof createExchange>, filter: string[] = []): { got: Envelope[]; stop: () => void } {
  const got: Envelope[] = [];
  const stop = ex.subscribe({ filter: parseFilters(filter), send: (e) => got.push(e) });
  return { got, stop };
}

const ids = (es: Envelope[]): string[] => es.map((e) => e.topic);

t.test('within the window every kept envelope is replayed, to each subscriber', async (t) => {
  const ex = createExchange();
  ex.keepBacklog(10_000, 10_000);
  ex.publish('ns', '/tasks/exit', 'containerd.events.TaskExit', { containerId: 'a' });
  const first = collect(ex);
  const second = collect(ex);
  t.same(ids(first.got), ['/tasks/exit']);
  t.same(ids(second.got), ['/tasks/exit'], 'a second subscriber in the window gets it too');
  first.stop();
  second.stop();
});

t.test('after the window only what no subscriber had is replayed, until the hold ends', async (t) => {
  const ex = createExchange();
  ex.holdBacklog();
  ex.publish('ns', '/tasks/exit', 'containerd.events.TaskExit', { containerId: 'a' });
  ex.publish('ns', '/tasks/delete', 'containerd.events.TaskDelete', { containerId: 'b' });
  ex.keepBacklog(40, 400);
  const early = collect(ex, ['topic=="/tasks/delete"']);
  t.same(ids(early.got), ['/tasks/delete'], 'the filter picks what is replayed');
  early.stop();
  await sleep(120);
  ex.publish('ns', '/tasks/start', 'containerd.events.TaskStart', { containerId: 'c' });
  const late = collect(ex);
  t.same(ids(late.got), ['/tasks/exit'], 'the exit nobody had is still there; the delivered delete and the post-window start are not');
  late.stop();
  t.same(ids(collect(ex).got), [], 'once had, it is not replayed again after the window');
});

t.test('the hold ends: an envelope nobody subscribed for is dropped', async (t) => {
  const ex = createExchange();
  ex.holdBacklog();
  ex.publish('ns', '/tasks/exit', 'containerd.events.TaskExit', { containerId: 'a' });
  ex.keepBacklog(20, 80);
  await sleep(200);
  t.same(ids(collect(ex).got), []);
});

t.test('live subscribers get what is published, and it counts as had', async (t) => {
  const ex = createExchange();
  ex.holdBacklog();
  ex.keepBacklog(40, 400);
  const live = collect(ex);
  ex.publish('ns', '/tasks/exit', 'containerd.events.TaskExit', { containerId: 'a' });
  t.same(ids(live.got), ['/tasks/exit']);
  live.stop();
  await sleep(120);
  t.same(ids(collect(ex).got), [], 'delivered live, so not replayed after the window');
});

t.test('what is published while serving is replayed only within the window', async (t) => {
  const ex = createExchange();
  ex.holdBacklog();
  ex.keepBacklog(40, 400);
  ex.publish('ns', '/containers/create', 'containerd.events.ContainerCreate', { id: 'a' });
  t.same(ids(collect(ex).got), ['/containers/create'], 'within the window');
  ex.publish('ns', '/containers/delete', 'containerd.events.ContainerDelete', { id: 'a' });
  await sleep(120);
  t.same(ids(collect(ex).got), [], 'a subscriber after the window gets none of it (nobody had the delete, still not held)');
});

t.test('while holding, a subscriber (none can come before serving) gets everything kept', async (t) => {
  const ex = createExchange();
  ex.holdBacklog();
  ex.publish('ns', '/tasks/exit', 'containerd.events.TaskExit', { containerId: 'a' });
  await sleep(60);
  t.same(ids(collect(ex).got), ['/tasks/exit']);
});
