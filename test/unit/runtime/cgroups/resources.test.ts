import t from 'tap';
import { opText, v1Writes, v2Controller, v2Writes, type CgroupOp } from '../../../../runtime/cgroups/resources';
import type { LinuxResources } from '../../../../spec/schema-linux';

const text = (ops: CgroupOp[]): string[] => ops.map(opText);
const DEFAULTS_V1 = [
  'devices.allow=c *:* m',
  'devices.allow=b *:* m',
  'devices.allow=c 1:3 rwm',
  'devices.allow=c 1:5 rwm',
  'devices.allow=c 1:7 rwm',
  'devices.allow=c 1:8 rwm',
  'devices.allow=c 1:9 rwm',
  'devices.allow=c 5:0 rwm',
  'devices.allow=c 5:2 rwm',
  'devices.allow=c 10:200 rwm',
  'devices.allow=c 136:* rwm',
];

type Row = [name: string, resources: LinuxResources, v1: string[], v2: string[]];

// Each field alone, so a row names exactly one mapping.
const rows: Row[] = [
  ['nothing', {}, [], []],
  ['memory.limit', { memory: { limit: 100663296 } }, ['memory.limit_in_bytes=100663296'], ['memory.max=100663296']],
  [
    'memory.limit -1 lifts memsw too',
    { memory: { limit: -1 } },
    ['memory.limit_in_bytes=-1 with memory.memsw.limit_in_bytes=-1 (optional)'],
    ['memory.swap.max=max (optional)', 'memory.max=max'],
  ],
  [
    'memory.limit and swap (docker update --memory 96m --memory-swap 192m)',
    { memory: { limit: 100663296, swap: 201326592 } },
    ['memory.limit_in_bytes=100663296 with memory.memsw.limit_in_bytes=201326592'],
    ['memory.swap.max=100663296', 'memory.max=100663296'],
  ],
  ['memory.swap equal to limit: no swap on v2', { memory: { limit: 1000, swap: 1000 } }, ['memory.limit_in_bytes=1000 with memory.memsw.limit_in_bytes=1000'], ['memory.swap.max=0', 'memory.max=1000']],
  ['memory.swap -1', { memory: { limit: 1000, swap: -1 } }, ['memory.limit_in_bytes=1000 with memory.memsw.limit_in_bytes=-1'], ['memory.swap.max=max', 'memory.max=1000']],
  ['memory.swap -1 alone', { memory: { swap: -1 } }, ['memory.memsw.limit_in_bytes=-1'], ['memory.swap.max=max']],
  ['memory.reservation', { memory: { reservation: 4096 } }, ['memory.soft_limit_in_bytes=4096'], ['memory.low=4096']],
  ['memory.reservation -1', { memory: { reservation: -1 } }, ['memory.soft_limit_in_bytes=-1'], ['memory.low=max']],
  ['memory.kernel (v1 only)', { memory: { kernel: 8192 } }, ['memory.kmem.limit_in_bytes=8192'], ['error']],
  ['memory.kernelTCP (v1 only)', { memory: { kernelTCP: 8192 } }, ['memory.kmem.tcp.limit_in_bytes=8192'], ['error']],
  ['memory.swappiness', { memory: { swappiness: 30 } }, ['memory.swappiness=30'], ['error']],
  ['memory.swappiness 0 is a value', { memory: { swappiness: 0 } }, ['memory.swappiness=0'], ['error']],
  ['memory.swappiness -1 as uint64 is unset', { memory: { swappiness: 2 ** 64 } }, [], []],
  ['memory.disableOOMKiller true', { memory: { disableOOMKiller: true } }, ['memory.oom_control=1'], ['error']],
  ['memory.disableOOMKiller false (docker sends it)', { memory: { disableOOMKiller: false } }, [], []],
  ['memory.useHierarchy true', { memory: { useHierarchy: true } }, ['memory.use_hierarchy=1'], []],
  ['memory.useHierarchy false', { memory: { useHierarchy: false } }, ['memory.use_hierarchy=0'], ['error']],
  [
    'memory.checkBeforeUpdate',
    { memory: { limit: 5000, checkBeforeUpdate: true } },
    ['check memory.usage_in_bytes <= 5000', 'memory.limit_in_bytes=5000'],
    ['check memory.current <= 5000', 'memory.max=5000'],
  ],
  ['memory.checkBeforeUpdate without a limit', { memory: { checkBeforeUpdate: true } }, [], []],
  ['memory.limit i64 max', { memory: { limit: 2 ** 63 } }, ['memory.limit_in_bytes=9223372036854775807'], ['memory.max=9223372036854775807']],
  ['cpu.shares', { cpu: { shares: 1024 } }, ['cpu.shares=1024'], ['cpu.weight=39']],
  ['cpu.shares 2', { cpu: { shares: 2 } }, ['cpu.shares=2'], ['cpu.weight=1']],
  ['cpu.shares 262144', { cpu: { shares: 262144 } }, ['cpu.shares=262144'], ['cpu.weight=10000']],
  ['cpu.quota and period', { cpu: { quota: 50000, period: 100000 } }, ['cpu.cfs_period_us=100000 (retry on EINVAL)', 'cpu.cfs_quota_us=50000'], ['cpu.max=50000 100000']],
  ['cpu.quota alone', { cpu: { quota: 20000 } }, ['cpu.cfs_quota_us=20000'], ['cpu.max=20000']],
  ['cpu.quota -1', { cpu: { quota: -1 } }, ['cpu.cfs_quota_us=-1'], ['cpu.max=max']],
  ['cpu.quota -1 with period', { cpu: { quota: -1, period: 100000 } }, ['cpu.cfs_period_us=100000 (retry on EINVAL)', 'cpu.cfs_quota_us=-1'], ['cpu.max=max 100000']],
  ['cpu.period alone keeps the quota on v2', { cpu: { period: 50000 } }, ['cpu.cfs_period_us=50000 (retry on EINVAL)'], ['cpu.max[1]=50000']],
  ['cpu.burst', { cpu: { burst: 1000 } }, ['cpu.cfs_burst_us=1000'], ['cpu.max.burst=1000']],
  ['cpu.burst 0 is a value', { cpu: { burst: 0 } }, ['cpu.cfs_burst_us=0'], ['cpu.max.burst=0']],
  ['cpu.realtimePeriod', { cpu: { realtimePeriod: 1000000 } }, ['cpu.rt_period_us=1000000 (retry on EINVAL)'], ['error']],
  ['cpu.realtimeRuntime', { cpu: { realtimeRuntime: 950000 } }, ['cpu.rt_runtime_us=950000'], ['error']],
  ['cpu.cpus', { cpu: { cpus: '0-1' } }, ['cpuset.cpus=0-1'], ['cpuset.cpus=0-1']],
  ['cpu.mems', { cpu: { mems: '0' } }, ['cpuset.mems=0'], ['cpuset.mems=0']],
  ['cpu.idle', { cpu: { idle: 1 } }, ['cpu.idle=1'], ['cpu.idle=1']],
  ['cpu.idle 0 is a value', { cpu: { idle: 0 } }, ['cpu.idle=0'], ['cpu.idle=0']],
  ['pids.limit', { pids: { limit: 2048 } }, ['pids.max=2048'], ['pids.max=2048']],
  ['pids.limit 0', { pids: { limit: 0 } }, ['pids.max=max'], ['pids.max=max']],
  ['pids.limit -1', { pids: { limit: -1 } }, ['pids.max=max'], ['pids.max=max']],
  ['blockIO.weight', { blockIO: { weight: 500 } }, ['blkio.weight=500 (else blkio.bfq.weight=500)'], ['io.weight=4950 (else io.bfq.weight=500)']],
  ['blockIO.weight 10', { blockIO: { weight: 10 } }, ['blkio.weight=10 (else blkio.bfq.weight=10)'], ['io.weight=1 (else io.bfq.weight=10)']],
  ['blockIO.weight 1000', { blockIO: { weight: 1000 } }, ['blkio.weight=1000 (else blkio.bfq.weight=1000)'], ['io.weight=10000 (else io.bfq.weight=1000)']],
  ['blockIO.leafWeight', { blockIO: { leafWeight: 300 } }, ['blkio.leaf_weight=300'], ['error']],
  [
    'blockIO.weightDevice',
    { blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 200, leafWeight: 100 }] } },
    ['blkio.weight_device=8:0 200 (else blkio.bfq.weight_device=8:0 200)', 'blkio.leaf_weight_device=8:0 100'],
    ['error'],
  ],
  ['blockIO.weightDevice weight only', { blockIO: { weightDevice: [{ major: 8, minor: 16, weight: 200 }] } }, ['blkio.weight_device=8:16 200 (else blkio.bfq.weight_device=8:16 200)'], ['io.weight=8:16 1920 (else io.bfq.weight=8:16 200)']],
  [
    'blockIO throttles',
    {
      blockIO: {
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
        throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 2097152 }],
        throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 0 }],
      },
    },
    [
      'blkio.throttle.read_bps_device=8:0 1048576',
      'blkio.throttle.write_bps_device=8:0 2097152',
      'blkio.throttle.read_iops_device=8:0 100',
      'blkio.throttle.write_iops_device=8:0 0',
    ],
    ['io.max=8:0 rbps=1048576', 'io.max=8:0 wbps=2097152', 'io.max=8:0 riops=100', 'io.max=8:0 wiops=max'],
  ],
  [
    'hugepageLimits',
    { hugepageLimits: [{ pageSize: '2MB', limit: 209715200 }] },
    ['hugetlb.2MB.limit_in_bytes=209715200', 'hugetlb.2MB.rsvd.limit_in_bytes=209715200 (optional)'],
    ['hugetlb.2MB.max=209715200', 'hugetlb.2MB.rsvd.max=209715200 (optional)'],
  ],
  ['network.classID', { network: { classID: 1048577 } }, ['net_cls.classid=1048577'], ['error']],
  [
    'network.priorities',
    { network: { priorities: [{ name: 'eth0', priority: 500 }, { name: 'lo', priority: 1 }] } },
    ['net_prio.ifpriomap=eth0 500', 'net_prio.ifpriomap=lo 1'],
    ['error'],
  ],
  [
    'rdma',
    { rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 10000 }, mlx4_0: { hcaObjects: 1000 }, empty: {} } },
    ['rdma.max=mlx5_1 hca_handle=3 hca_object=10000', 'rdma.max=mlx4_0 hca_object=1000'],
    ['rdma.max=mlx5_1 hca_handle=3 hca_object=10000', 'rdma.max=mlx4_0 hca_object=1000'],
  ],
  ['unified', { unified: { 'memory.high': '50000', 'io.latency': '8:0 target=75' } }, ['error'], ['memory.high=50000', 'io.latency=8:0 target=75']],
  ['unified empty', { unified: {} }, [], []],
  // docs/engines.md §1.8: the zeros docker sends are "unset".
  [
    'docker zeros',
    { memory: { limit: 0, reservation: 0, swap: 0, kernel: 0, kernelTCP: 0 }, cpu: { shares: 0, quota: 0, period: 0, realtimePeriod: 0, realtimeRuntime: 0 }, blockIO: { weight: 0, leafWeight: 0 }, network: { classID: 0 } },
    [],
    [],
  ],
  [
    'docker update stdin (docs/engines.md §3c)',
    { memory: { limit: 100663296, reservation: 0, swap: 201326592, kernel: 0 }, cpu: { shares: 0, quota: 0, period: 0 }, blockIO: { weight: 0 } },
    ['memory.limit_in_bytes=100663296 with memory.memsw.limit_in_bytes=201326592'],
    ['memory.swap.max=100663296', 'memory.max=100663296'],
  ],
];

t.test('every resource field, v1 and v2', async (t) => {
  for (const [name, r, v1, v2] of rows) {
    if (v1[0] === 'error') t.throws(() => v1Writes(r), { code: 'InvalidArgument' }, `${name} (v1 refuses)`);
    else t.same(text(v1Writes(r)), v1, `${name} (v1)`);
    if (v2[0] === 'error') t.throws(() => v2Writes(r), { code: 'InvalidArgument' }, `${name} (v2 refuses)`);
    else t.same(text(v2Writes(r)), v2, `${name} (v2)`);
  }
});

t.test('device rules: engine rules in order, then the defaults (docs/engines.md §1.9)', async (t) => {
  t.same(text(v1Writes({ devices: [{ allow: false, access: 'rwm' }] })), ['devices.deny=a', ...DEFAULTS_V1], 'podman: deny all only');
  t.same(
    text(
      v1Writes({
        devices: [
          { allow: false, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
          { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
          { allow: true, type: 'c', major: 136, minor: -1, access: 'rw' },
          { allow: true, type: 'b', access: 'mr' },
        ],
      }),
    ),
    ['devices.deny=a', 'devices.allow=c 1:5 rwm', 'devices.deny=c 10:229 rwm', 'devices.allow=c 136:* rw', 'devices.allow=b *:* rm', ...DEFAULTS_V1],
    'docker-like list: wildcards, access order normalised',
  );
  t.same(text(v1Writes({ devices: [{ allow: true, type: 'a', access: 'rwm' }] })), ['devices.allow=a', ...DEFAULTS_V1], 'allow all');
  t.same(text(v1Writes({ devices: [{ allow: false, type: 'a', major: 4, access: 'w' }] })), ['devices.deny=c 4:* w', 'devices.deny=b 4:* w', ...DEFAULTS_V1], 'a partial "a" rule is split');
  t.same(text(v1Writes({ devices: [] })), DEFAULTS_V1, 'empty list: the defaults only');
  t.same(v2Writes({ devices: [{ allow: false, access: 'rwm' }] }), [], 'v2: device rules are not files');
  t.throws(() => v1Writes({ devices: [{ allow: true, type: 'u', access: 'rwm' }] }), { message: 'linux.resources.devices[0].type: want a, b or c, got "u"' });
  t.throws(() => v1Writes({ devices: [{ allow: true, type: 'c', access: 'rwx' }] }), { message: 'linux.resources.devices[0].access: want a non-empty combination of r, w and m, got "rwx"' });
});

t.test('order across controllers (v1): cpuset, devices, memory, cpu, pids, blkio, hugetlb, net, rdma', async (t) => {
  const ops = v1Writes({
    rdma: { d: { hcaHandles: 1 } },
    network: { classID: 1 },
    hugepageLimits: [{ pageSize: '1GB', limit: 1 }],
    blockIO: { weight: 100 },
    pids: { limit: 1 },
    cpu: { shares: 2, cpus: '0' },
    memory: { limit: 1 },
    devices: [],
  });
  t.same(
    [...new Set(ops.map((o) => o.controller))],
    ['cpuset', 'devices', 'memory', 'cpu', 'pids', 'blkio', 'hugetlb', 'net_cls', 'rdma'],
  );
});

t.test('v2 operations name their controller; unified keys come last', async (t) => {
  const ops = v2Writes({ unified: { 'memory.max': '1' }, memory: { limit: 2 } });
  t.same(
    ops.map((o) => [o.controller, opText(o)]),
    [
      ['memory', 'memory.max=2'],
      ['memory', 'memory.max=1'],
    ],
  );
  t.equal(v2Controller('hugetlb.2MB.max'), 'hugetlb');
  t.equal(v2Controller('cgroup.freeze'), 'cgroup');
});

t.test('errors say which field and why', async (t) => {
  t.throws(() => v1Writes({ memory: { limit: 2000, swap: 1000 } }), {
    message: 'linux.resources.memory.swap (1000) is below memory.limit (2000): swap counts memory plus swap',
    code: 'InvalidArgument',
  });
  t.throws(() => v2Writes({ memory: { limit: 2000, swap: 1000 } }), { message: 'linux.resources.memory.swap (1000) is below memory.limit (2000): swap counts memory plus swap' });
  t.throws(() => v2Writes({ memory: { swap: 1000 } }), {
    message: 'linux.resources.memory.swap (1000): cgroup v2 needs a memory limit to derive memory.swap.max (swap - limit)',
  });
  t.throws(() => v1Writes({ unified: { 'memory.high': '1' } }), {
    message: 'linux.resources.unified: not supported on cgroup v1: keys memory.high are cgroup v2 files',
  });
  t.throws(() => v2Writes({ unified: { '../escape': '1' } }), { message: 'linux.resources.unified: "../escape" is not a cgroup file name' });
  t.throws(() => v2Writes({ unified: { 'a/b.c': '1' } }), { message: 'linux.resources.unified: "a/b.c" is not a cgroup file name' });
  t.throws(() => v2Writes({ memory: { kernel: 1 } }), {
    message: 'linux.resources.memory.kernel: not supported on cgroup v2: kernel memory is always accounted with user memory',
  });
  t.throws(() => v2Writes({ network: { classID: 1 } }), {
    message: 'linux.resources.network: not supported on cgroup v2: there are no net_cls and net_prio controllers (use an eBPF program on the cgroup)',
  });
  t.throws(() => v1Writes({ memory: { swappiness: 101 } }), { message: 'linux.resources.memory.swappiness (101): must be between 0 and 100' });
  t.throws(() => v1Writes({ hugepageLimits: [{ pageSize: '2mb', limit: 1 }] }), {
    message: 'linux.resources.hugepageLimits[0].pageSize: want a size like "2MB" or "1GB", got "2mb"',
  });
});
