/** tsctl's -p parsing (ranges, empty host ports, udp) and docker's PORTS and NetworkSettings shapes. */
import t from 'tap';
import { networkSettings, parsePublish, portsText, type WireAttachment } from '../../../../supervisor/tsctl/network';

t.test('parsePublish: docker forms, ranges and refusals', async (t) => {
  t.same(parsePublish('80'), [{ hostIp: '0.0.0.0', hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
  t.same(parsePublish('127.0.0.1::80'), [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
  t.same(parsePublish('53:53/udp'), [{ hostIp: '0.0.0.0', hostPort: 53, containerPort: 53, protocol: 'udp' }]);
  t.same(parsePublish('8000-8001:80-81'), [
    { hostIp: '0.0.0.0', hostPort: 8000, containerPort: 80, protocol: 'tcp' },
    { hostIp: '0.0.0.0', hostPort: 8001, containerPort: 81, protocol: 'tcp' },
  ]);
  t.same(parsePublish('80-81').map((p) => [p.hostPort, p.containerPort]), [[0, 80], [0, 81]], 'a container range alone gets free host ports');
  t.throws(() => parsePublish('8000-8002:80-81'), /differ in length/);
  t.throws(() => parsePublish('81-80'), /end is below the start/);
  t.throws(() => parsePublish('99999'), /from 1 to 65535/);
  t.throws(() => parsePublish('80/sctp'), /want tcp or udp/);
  t.throws(() => parsePublish('a.b:1:2'), /invalid ip address/);
});

const att: WireAttachment = {
  id: 'c1',
  netns: '/run/x/netns/default-c1',
  filesDir: '/run/x/files',
  endpoints: [{ network: 'bridge', networkId: 'n1', ifName: 'eth0', ip: '172.17.0.2', prefixLen: 16, gateway: '172.17.0.1', mac: '02:00:00:00:00:01', aliases: [] }],
  ports: [
    { hostIp: '0.0.0.0', hostPort: 8001, containerPort: 81, protocol: 'tcp' },
    { hostIp: '0.0.0.0', hostPort: 8000, containerPort: 80, protocol: 'tcp' },
    { hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, protocol: 'udp' },
  ],
};

t.test('portsText joins consecutive mappings into ranges, as docker ps', async (t) => {
  t.equal(portsText(att), '127.0.0.1:5353->53/udp, 0.0.0.0:8000-8001->80-81/tcp');
  t.equal(portsText(undefined), '');
});

t.test('networkSettings: a stopped container has its networks without addresses or ports', async (t) => {
  const live = networkSettings(att, 'bridge');
  t.equal(live['IPAddress'], '172.17.0.2');
  t.same(Object.keys(live['Ports'] as object), ['53/udp', '80/tcp', '81/tcp']);
  const stopped = networkSettings(att, 'bridge', false);
  t.equal(stopped['IPAddress'], '');
  t.same(stopped['Ports'], {});
  t.same(stopped['Networks'], { bridge: { NetworkID: 'n1', Aliases: [], IPAddress: '', IPPrefixLen: 0, Gateway: '', MacAddress: '' } });
});
