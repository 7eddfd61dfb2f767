/*
 * Seeds for the plan decoder's fuzz target (native-helpers/decode_fuzz.c): the encoded plans of
 * the good spec fixtures, so libFuzzer starts from real plans instead of learning the header from
 * nothing. Usage: node build/fuzz-seeds.cjs <out-dir>; prints how many seeds it wrote.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSpec } from '../spec';
import type { HostFacts } from '../runtime/host/probe';
import { buildPlan, type BuildOptions } from '../runtime/plan/build';
import { encodePlan } from '../runtime/plan/encode';

const fixtures = path.resolve(__dirname, '../test/fixtures/spec/good');
const host: HostFacts = {
  cgroupMode: 'unified',
  cgroupHierarchies: [{ mountpoint: '/sys/fs/cgroup', root: '/', version: 2, controllers: [] }],
  hasKcore: true,
  capLastCap: 40,
  hasSystemd: false,
};
const opts: BuildOptions = {
  id: 'seed', bundle: '/b', rootfs: '/b/rootfs', execFifo: '/run/tsrun/seed/exec.fifo', noPivot: false, noNewKeyring: false,
  preserveFds: 0, sourceKinds: {}, cgroupPaths: { '/sys/fs/cgroup': '/sys/fs/cgroup/seed' },
};

const out = process.argv[2];
if (out === undefined) throw new Error('usage: fuzz-seeds <out-dir>');
fs.mkdirSync(out, { recursive: true });
let n = 0;
for (const f of fs.readdirSync(fixtures).filter((x) => x.endsWith('.json')).sort()) {
  const spec = parseSpec(fs.readFileSync(path.join(fixtures, f), 'utf8'), f);
  if (!spec.process) continue; // no process, no plan
  fs.writeFileSync(path.join(out, `${path.basename(f, '.json')}.plan`), encodePlan(buildPlan(spec, host, opts)));
  n++;
}
console.log(`${n} seeds in ${out}`);
