/**
 * A container's release splits each list's DEL around its namespace (cni.ts DelPart): the plugins
 * at the end of the list that need the namespace run first, with it, keeping the cache entry; the
 * head made of bridge and portmap runs afterwards without CNI_NETNS and drops the entry. Together
 * they run every plugin once, in reverse order. Fake plugins (shell scripts) log what they got.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { cacheFile, delNetworkList, delRunsAny, hostLinkOf, type CacheEntry, type CniConfList, type CniOptions } from '../../../supervisor/networks/cni';
import { writeAtomic } from '../../../supervisor/networks/files';

function setup(t: { teardown(fn: () => void): void }): { opts: CniOptions; log: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-cnisplit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const log = path.join(dir, 'log');
  for (const type of ['bridge', 'portmap', 'tuning']) {
    fs.writeFileSync(path.join(bin, type), `#!/bin/sh\ncat >/dev/null\necho "$CNI_COMMAND ${type} \${CNI_NETNS-unset}" >> ${log}\n`, { mode: 0o755 });
  }
  return { opts: { binDirs: [bin], cacheDir: path.join(dir, 'cache'), timeoutMs: 10_000 }, log };
}

const list: CniConfList = { cniVersion: '1.0.0', name: 'front', plugins: [{ type: 'bridge', bridge: 'br0' }, { type: 'portmap' }, { type: 'tuning' }] };

const entry = (config: CniConfList, result?: CacheEntry['result']): CacheEntry => ({
  kind: 'cniCacheV1',
  containerId: 'default-c1',
  ifName: 'eth0',
  networkName: config.name,
  netns: '/run/netns/c1',
  config,
  ...(result !== undefined ? { result } : {}),
});

t.test('the two parts run every plugin once, in reverse order, the second without CNI_NETNS', async (t) => {
  const { opts, log } = setup(t);
  const att = { containerId: 'default-c1', netns: '/run/netns/c1', ifName: 'eth0' };
  const file = cacheFile(opts.cacheDir, list.name, att);
  writeAtomic(file, JSON.stringify(entry(list, { cniVersion: '1.0.0' })));
  t.ok(delRunsAny(list, 'inNetns'));
  t.ok(delRunsAny(list, 'afterNetns'));
  await delNetworkList(list, att, opts, 'inNetns');
  t.same(fs.readFileSync(log, 'utf8').trim().split('\n'), ['DEL tuning /run/netns/c1']);
  t.ok(fs.existsSync(file), 'the cache entry stays for the second part');
  await delNetworkList(list, { ...att, netns: '' }, opts, 'afterNetns');
  t.same(fs.readFileSync(log, 'utf8').trim().split('\n'), ['DEL tuning /run/netns/c1', 'DEL portmap unset', 'DEL bridge unset']);
  t.notOk(fs.existsSync(file), 'and goes with it');
});

t.test('a bridge-only list has nothing to run in the namespace; all runs whole with it', async (t) => {
  const { opts, log } = setup(t);
  const bridgeOnly: CniConfList = { ...list, plugins: [list.plugins[0]!] };
  t.notOk(delRunsAny(bridgeOnly, 'inNetns'));
  t.ok(delRunsAny(bridgeOnly, 'afterNetns'));
  await delNetworkList(list, { containerId: 'default-c1', netns: '/run/netns/c1', ifName: 'eth0' }, opts);
  t.same(fs.readFileSync(log, 'utf8').trim().split('\n'), ['DEL tuning /run/netns/c1', 'DEL portmap /run/netns/c1', 'DEL bridge /run/netns/c1']);
});

t.test('hostLinkOf: the host end of the veth pair in a bridge result', async (t) => {
  const result = { cniVersion: '1.0.0', interfaces: [{ name: 'br0', mac: 'aa' }, { name: 'veth12ab34cd', mac: 'bb' }, { name: 'eth0', mac: 'cc', sandbox: '/run/netns/c1' }] };
  t.equal(hostLinkOf(entry(list, result)), 'veth12ab34cd');
  t.equal(hostLinkOf(entry(list)), undefined, 'no result cached (an ADD cut short)');
  t.equal(hostLinkOf(entry({ ...list, plugins: [{ type: 'ptp' }] }, result)), undefined, 'not a bridge list');
  t.equal(hostLinkOf(entry(list, { interfaces: [{ name: 'br0' }, { name: 'bad name; x' }] })), undefined, 'not a device name');
});
