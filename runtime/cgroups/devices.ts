/*
 * Device cgroup rules: the engine's `linux.resources.devices`, normalised, with the runtime's
 * default allow list appended (docs/engines.md §1.9: podman sends only "deny all", docker's list
 * lacks 136:* and 5:2, yet `-t` must work). v1 turns them into devices.allow / devices.deny
 * lines here; v2 compiles the same list into an eBPF program (devices-bpf.ts).
 */
import { TsrunError } from '../../spec/errors';
import type { LinuxDeviceCgroup } from '../../spec/schema-linux';

/** One normalised rule: type "a" means both b and c; a null number is the wildcard "*". */
export interface DeviceRule {
  readonly allow: boolean;
  readonly type: 'a' | 'b' | 'c';
  readonly major: number | null;
  readonly minor: number | null;
  /** A non-empty subset of "rwm", in that order. */
  readonly access: string;
}

const rule = (type: 'b' | 'c', major: number | null, minor: number | null, access: string): DeviceRule => ({
  allow: true,
  type,
  major,
  minor,
  access,
});

/**
 * The rules every container gets after the engine's, in runc's order (docs/engines.md §1.9):
 * mknod of any node, then /dev/null, zero, full, random, urandom, tty, console, ptmx, tun,
 * and the pty slaves.
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = [
  rule('c', null, null, 'm'),
  rule('b', null, null, 'm'),
  rule('c', 1, 3, 'rwm'),
  rule('c', 1, 5, 'rwm'),
  rule('c', 1, 7, 'rwm'),
  rule('c', 1, 8, 'rwm'),
  rule('c', 1, 9, 'rwm'),
  rule('c', 5, 0, 'rwm'),
  rule('c', 5, 2, 'rwm'),
  rule('c', 10, 200, 'rwm'),
  rule('c', 136, null, 'rwm'),
];

function normaliseAccess(access: string | undefined, where: string): string {
  const a = access ?? 'rwm';
  if (a === '' || /[^rwm]/.test(a)) {
    throw new TsrunError('InvalidArgument', `${where}.access: want a non-empty combination of r, w and m, got ${JSON.stringify(a)}`);
  }
  return ['r', 'w', 'm'].filter((c) => a.includes(c)).join('');
}

function normaliseNumber(n: number | undefined): number | null {
  return n === undefined || n < 0 ? null : n;
}

/** The engine's rules normalised, followed by DEFAULT_DEVICE_RULES; [] when none are given. */
export function deviceRules(devices: readonly LinuxDeviceCgroup[] | undefined): DeviceRule[] {
  if (devices === undefined) return [];
  const out: DeviceRule[] = [];
  for (const [i, d] of devices.entries()) {
    const where = `linux.resources.devices[${i}]`;
    const type = d.type ?? 'a';
    if (type !== 'a' && type !== 'b' && type !== 'c') {
      throw new TsrunError('InvalidArgument', `${where}.type: want a, b or c, got ${JSON.stringify(type)}`);
    }
    out.push({ allow: d.allow, type, major: normaliseNumber(d.major), minor: normaliseNumber(d.minor), access: normaliseAccess(d.access, where) });
  }
  return [...out, ...DEFAULT_DEVICE_RULES];
}

/** True for the rule that matches every device and every access ("a *:* rwm"). */
export function isAllDevices(r: DeviceRule): boolean {
  return r.type === 'a' && r.major === null && r.minor === null && r.access === 'rwm';
}

/** One line for devices.allow or devices.deny. */
export interface DeviceLine {
  readonly file: 'devices.allow' | 'devices.deny';
  readonly value: string;
}

/**
 * The v1 lines for a rule list, in order. The kernel reads a line starting with "a" as
 * "everything" whatever follows (security/device_cgroup.c devcgroup_update_access), so a
 * whole-device-space rule is written as the bare "a" (a deny-all resets the list to
 * default-deny), and an "a" rule limited in numbers or access is split into its b and c halves.
 */
export function v1DeviceLines(rules: readonly DeviceRule[]): DeviceLine[] {
  const out: DeviceLine[] = [];
  const num = (n: number | null): string => (n === null ? '*' : String(n));
  for (const r of rules) {
    const file = r.allow ? 'devices.allow' : 'devices.deny';
    if (isAllDevices(r)) {
      out.push({ file, value: 'a' });
      continue;
    }
    for (const type of r.type === 'a' ? (['c', 'b'] as const) : [r.type]) {
      out.push({ file, value: `${type} ${num(r.major)}:${num(r.minor)} ${r.access}` });
    }
  }
  return out;
}
