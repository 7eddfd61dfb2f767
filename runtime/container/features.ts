/*
 * runtime-spec's features document (features.md), computed from this host: the namespaces
 * /proc/self/ns has, the cgroup hierarchies mounted, what the loaded libseccomp can do, and the
 * capabilities the kernel knows. Nothing here is a static claim about machines we are not on.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { CAPABILITY_NUMBERS, KNOWN_MOUNT_OPTIONS } from '../../spec';
import { probeHost } from '../host/probe';
import { libseccomp } from '../native/seccomp';
import { SCMP_ARCH, SCMP_CMP } from '../seccomp/translate';

/** The features document `tsrun features` prints. */
export interface Features {
  readonly ociVersionMin: string;
  readonly ociVersionMax: string;
  readonly hooks: readonly string[];
  readonly mountOptions: readonly string[];
  readonly linux: {
    readonly namespaces: readonly string[];
    readonly capabilities: readonly string[];
    readonly cgroup: { readonly v1: boolean; readonly v2: boolean; readonly systemd: boolean; readonly systemdUser: boolean };
    readonly seccomp: { readonly enabled: boolean; readonly actions: readonly string[]; readonly operators: readonly string[]; readonly archs: readonly string[] };
    readonly apparmor: { readonly enabled: boolean };
    readonly selinux: { readonly enabled: boolean };
    readonly mountExtensions: { readonly idmap: { readonly enabled: boolean } };
  };
  readonly annotations: Readonly<Record<string, string>>;
}

const NS_LINKS: readonly [oci: string, link: string][] = [
  ['cgroup', 'cgroup'], ['ipc', 'ipc'], ['mount', 'mnt'], ['network', 'net'], ['pid', 'pid'], ['time', 'time'], ['user', 'user'], ['uts', 'uts'],
];

/** libseccomp API level each action needs (seccomp_api_get(3)). */
const ACTION_API: readonly [string, number][] = [
  ['SCMP_ACT_ALLOW', 1], ['SCMP_ACT_ERRNO', 1], ['SCMP_ACT_KILL', 1], ['SCMP_ACT_KILL_PROCESS', 3], ['SCMP_ACT_KILL_THREAD', 1],
  ['SCMP_ACT_LOG', 3], ['SCMP_ACT_NOTIFY', 6], ['SCMP_ACT_TRACE', 1], ['SCMP_ACT_TRAP', 1],
];

/** The running kernel is at least major.minor ("6.18.44-…" from uname -r). */
export function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > major || (maj === major && min >= minor);
}

/** Compute the features document for this host and this build. */
export function hostFeatures(version: string): Features {
  const host = probeHost();
  const namespaces = NS_LINKS.filter(([, link]) => fs.existsSync(`/proc/self/ns/${link}`)).map(([oci]) => oci);
  const capabilities = Object.entries(CAPABILITY_NUMBERS)
    .filter(([, n]) => n <= host.capLastCap)
    .sort(([, a], [, b]) => a - b)
    .map(([name]) => name);
  let seccomp: Features['linux']['seccomp'] = { enabled: false, actions: [], operators: [], archs: [] };
  const annotations: Record<string, string> = { 'org.opencontainers.tsrun.version': version };
  try {
    const lib = libseccomp();
    const api = lib.apiLevel();
    const kernelHasSeccomp = /^Seccomp:/m.test(fs.readFileSync('/proc/self/status', 'utf8'));
    seccomp = {
      enabled: kernelHasSeccomp,
      actions: ACTION_API.filter(([, need]) => api >= need).map(([a]) => a),
      operators: Object.keys(SCMP_CMP).sort(),
      archs: [...SCMP_ARCH.values()].filter((a) => lib.resolveArch(a.name) !== undefined).map((a) => a.oci).sort(),
    };
    annotations['io.github.seccomp.libseccomp.version'] = `${lib.version.major}.${lib.version.minor}.${lib.version.micro}`;
  } catch {
    // No libseccomp: seccomp stays disabled in the document.
  }
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.2.0',
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: [...KNOWN_MOUNT_OPTIONS].sort(),
    linux: {
      namespaces,
      capabilities,
      cgroup: {
        v1: host.cgroupHierarchies.some((h) => h.version === 1),
        v2: host.cgroupHierarchies.some((h) => h.version === 2),
        // Only the slice:prefix:name path form; scopes are not created through systemd.
        systemd: host.hasSystemd,
        systemdUser: false,
      },
      seccomp,
      apparmor: { enabled: fs.existsSync('/sys/kernel/security/apparmor') },
      selinux: { enabled: fs.existsSync('/sys/fs/selinux/enforce') },
      // Idmapped mounts need mount_setattr(2), Linux 5.12, and user namespaces to map with.
      mountExtensions: { idmap: { enabled: kernelAtLeast(os.release(), 5, 12) && fs.existsSync('/proc/self/ns/user') } },
    },
    annotations,
  };
}
