/**
 * `features` describes this host: namespaces /proc/self/ns has, cgroup versions mounted, the
 * capabilities the kernel knows, and what libseccomp supports; its shape is runc's.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import t from 'tap';
import { requires } from '../helpers/requires';
import { runcPath, runtimeName, runtimePath } from '../helpers/runtime';

interface FeaturesDoc {
  hooks: string[];
  mountOptions: string[];
  linux: { namespaces: string[]; capabilities: string[]; cgroup: { v1: boolean; v2: boolean }; seccomp: { enabled: boolean; actions: string[]; operators: string[]; archs: string[] } };
  annotations: Record<string, string>;
}

t.test('features reflect the host', async (t) => {
  if (!requires(t, 'not-runc')) return;
  const r = spawnSync(runtimePath, ['features'], { encoding: 'utf8' });
  t.equal(r.status, 0, `features exits 0 (${r.stderr})`);
  const f = JSON.parse(r.stdout) as FeaturesDoc;
  t.same(f.hooks, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
  t.equal(f.linux.namespaces.includes('time'), fs.existsSync('/proc/self/ns/time'), 'time is listed exactly when the kernel has it');
  t.equal(f.linux.capabilities.length, Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')) + 1, 'one capability per number the kernel knows');
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  t.equal(f.linux.cgroup.v1, / - cgroup /.test(mounts), 'cgroup v1 exactly when a v1 hierarchy is mounted');
  t.equal(f.linux.cgroup.v2, / - cgroup2 /.test(mounts), 'cgroup v2 exactly when cgroup2 is mounted');
  t.ok(f.linux.seccomp.enabled && f.linux.seccomp.archs.includes('SCMP_ARCH_X86_64'), 'seccomp with the native architecture');
  t.ok(f.linux.seccomp.operators.includes('SCMP_CMP_MASKED_EQ'), 'MASKED_EQ among the operators');
  t.match(f.annotations['io.github.seccomp.libseccomp.version'] ?? '', /^\d+\.\d+\.\d+$/, 'the libseccomp version in use');
  t.ok(f.mountOptions.includes('rro') && f.mountOptions.includes('idmap'), 'mount options include the recursive and idmap ones');
  if (runcPath !== undefined && runtimeName === 'tsrun') {
    const runc = JSON.parse(spawnSync(runcPath, ['features'], { encoding: 'utf8' }).stdout) as Record<string, unknown>;
    for (const key of ['ociVersionMin', 'ociVersionMax', 'hooks', 'mountOptions', 'linux', 'annotations']) t.ok(key in runc && key in f, `${key} in both documents`);
  }
});
