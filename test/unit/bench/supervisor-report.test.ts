/*
 * The supervisor section's markdown: the density target rows and node's floor beside them.
 */
import t from 'tap';
import { supervisorReport, type ScaleResult } from '../../../bench/sections/supervisor-report';

const times = (v: number): number[] => Array.from({ length: 5 }, () => v);
const mem = (pssMiB: number, count: number) => ({ pssKb: pssMiB * 1024, rssKb: 2 * pssMiB * 1024, count });
const result = (subject: string, n: number, perContainerMiB: number): ScaleResult => ({
  subject,
  n,
  sequential: { times: times(50), totalMs: 1000 },
  parallel: { times: times(80), totalMs: 800 },
  density: { shims: mem(perContainerMiB * n, n), daemon: { pssKb: 1024, rssKb: 2048 } },
});

t.test("node's floor is reported against containerd-shim-runc-v2 at its N", async (t) => {
  const lifecycle = {
    runTimes: new Map([['containerd + runc', times(90)], ['tsrund', times(60)]]),
    floorTimes: new Map([['containerd + runc', times(12)], ['tsrund', times(12)]]),
    rpcs: new Map<string, number[]>(),
    rounds: 5,
  };
  const scale = [result('containerd + runc', 20, 3), result('tsrund', 20, 15)];
  const md = supervisorReport(lifecycle, scale, { n: 20, memory: mem(20 * 7.5, 20) });
  t.match(md, /Node's floor: 20 idle `node` processes with the shims' flags \(`--max-semi-space-size=1[^`]*`\)/);
  t.match(md, /Pss 7\.5 MiB each = 2\.50× containerd-shim-runc-v2 at N = 20/);
  t.match(md, /\| Pss per container, N = 20, one shim per container \(MiB\) \| ≤ 3 × containerd-shim-runc-v2 \| 15\.0 \| 9\.0 \| no \|/);
  t.notMatch(supervisorReport(lifecycle, scale), /Node's floor/, 'no floor measured, no line');
});
