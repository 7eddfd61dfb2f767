/*
 * Semantic checks on a parsed spec: the runtime-spec MUSTs the schema cannot express, and what
 * runc refuses. Checks are named and run in the order of SPEC_CHECKS; the first failure is thrown
 * as TsrunError('InvalidArgument', "<field path>: <what is wrong>"). No I/O.
 *
 * Deliberately accepted: unknown mount options (they are filesystem data, see mount-options.ts)
 * and relative mount destinations (config.md: "MAY be a relative path, in which case it MUST be
 * interpreted as relative to /").
 */
import { TsrunError } from './errors';
import { quote } from './describe';
import { mappingsProblem } from './ids';
import { parseMountOptions } from './mount-options';
import { procMountProblem } from './proc-mounts';
import type { Process, Spec } from './schema';
import { LINUX_CHECKS, type LinuxCheckName, type SpecCheck, type ValidateContext } from './validate-linux';
import { PROCESS_CHECKS, type ProcessCheckName } from './validate-process';

export type { ValidateContext } from './validate-linux';

const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;

function eachHook(spec: Spec, check: (at: string, path: string, timeout: number | undefined) => string | undefined): string | undefined {
  for (const kind of HOOK_KINDS) {
    for (const [i, hook] of (spec.hooks?.[kind] ?? []).entries()) {
      const problem = check(`hooks.${kind}[${i}]`, hook.path, hook.timeout);
      if (problem !== undefined) return problem;
    }
  }
  return undefined;
}

const TOP_CHECKS = {
  // config.md: ociVersion is SemVer (the schema makes it required); another major version is another format.
  'oci-version': (spec) => {
    const version = spec.ociVersion;
    if (version === '') return 'ociVersion: must not be empty';
    if (!/^1(\.\d+)*([-+][0-9A-Za-z.+-]*)?$/.test(version)) return `ociVersion: unsupported version ${quote(version)}, want 1.x`;
    return undefined;
  },
  // config.md: root is REQUIRED on Linux. A relative path is taken relative to the bundle.
  'root-path': (spec) => ((spec.root?.path ?? '') === '' ? 'root.path: required' : undefined),
  // runtime.md: process is REQUIRED when start is called, and create is what prepares it.
  'process-present': (spec) => (spec.process === undefined ? 'process: required' : undefined),
} satisfies Record<string, SpecCheck>;

const MOUNT_CHECKS = {
  // A destination must name something; a NUL byte would silently truncate it in the C helper.
  'mount-destination': (spec) => {
    for (const [i, m] of (spec.mounts ?? []).entries()) {
      if (m.destination === '') return `mounts[${i}].destination: must not be empty`;
      if (m.destination.includes('\0')) return `mounts[${i}].destination: contains a NUL byte`;
    }
    return undefined;
  },
  // Without a source a bind mount would bind the bundle directory itself; nobody means that.
  'mount-bind-source': (spec) => {
    for (const [i, m] of (spec.mounts ?? []).entries()) {
      const isBind = m.type === 'bind' || parseMountOptions(m.options ?? []).isBind;
      if (isBind && (m.source ?? '') === '') return `mounts[${i}].source: required for a bind mount`;
    }
    return undefined;
  },
  // config.md: uidMappings MUST be given with gidMappings; idmap/ridmap without mappings MUST
  // fail unless the container has a user namespace whose mapping can be used.
  'mount-idmap': (spec) => {
    const hasUserns = spec.linux?.namespaces?.some((ns) => ns.type === 'user') ?? false;
    for (const [i, m] of (spec.mounts ?? []).entries()) {
      const hasUid = m.uidMappings !== undefined;
      const hasGid = m.gidMappings !== undefined;
      if (hasUid !== hasGid) return `mounts[${i}]: uidMappings and gidMappings must be given together`;
      const opts = parseMountOptions(m.options ?? []);
      if (opts.isIdmap && !hasUid && !hasUserns) {
        return `mounts[${i}].options: ${opts.isRecursiveIdmap ? 'ridmap' : 'idmap'} needs uidMappings and gidMappings or a user namespace`;
      }
    }
    return undefined;
  },
  // The same range rules as linux.uidMappings (ids.ts): the kernel turns these into a user namespace too.
  'mount-idmap-range': (spec) => {
    for (const [i, m] of (spec.mounts ?? []).entries()) {
      const problem =
        mappingsProblem(m.uidMappings, `mounts[${i}].uidMappings`, 'uid') ?? mappingsProblem(m.gidMappings, `mounts[${i}].gidMappings`, 'gid');
      if (problem !== undefined) return problem;
    }
    return undefined;
  },
  // runc's checkProcMount on the literal destination, so the error comes before anything is
  // cloned; the C helper checks again on the path the destination resolves to in the rootfs.
  'mount-proc': (spec) => {
    for (const [i, m] of (spec.mounts ?? []).entries()) {
      const isBind = m.type === 'bind' || parseMountOptions(m.options ?? []).isBind;
      const problem = procMountProblem(m.destination, isBind ? 'bind' : (m.type ?? ''));
      if (problem !== undefined) return `mounts[${i}].destination: ${problem}`;
    }
    return undefined;
  },
} satisfies Record<string, SpecCheck>;

const HOOK_CHECKS = {
  // config.md: a hook's path MUST be absolute (it is run from the runtime, not from a shell).
  'hook-path': (spec) =>
    eachHook(spec, (at, path) => (path.startsWith('/') ? undefined : `${at}.path: must be an absolute path, got ${quote(path)}`)),
  // config.md: timeout MUST be greater than zero.
  'hook-timeout': (spec) =>
    eachHook(spec, (at, _path, timeout) =>
      timeout === undefined || timeout > 0 ? undefined : `${at}.timeout: must be greater than zero, got ${timeout}`,
    ),
} satisfies Record<string, SpecCheck>;

function fromProcessCheck(name: ProcessCheckName): SpecCheck {
  return (spec) => (spec.process === undefined ? undefined : PROCESS_CHECKS[name](spec.process, 'process'));
}

const PROCESS_SPEC_CHECKS = Object.fromEntries(
  (Object.keys(PROCESS_CHECKS) as ProcessCheckName[]).map((name) => [name, fromProcessCheck(name)]),
) as Record<ProcessCheckName, SpecCheck>;

/** The name of one semantic check, e.g. "namespace-type"; bad fixtures are named after these. */
export type SpecCheckName = keyof typeof TOP_CHECKS | ProcessCheckName | keyof typeof MOUNT_CHECKS | LinuxCheckName | keyof typeof HOOK_CHECKS;

const ALL_CHECKS: Readonly<Record<SpecCheckName, SpecCheck>> = {
  ...TOP_CHECKS,
  ...PROCESS_SPEC_CHECKS,
  ...MOUNT_CHECKS,
  ...LINUX_CHECKS,
  ...HOOK_CHECKS,
};

/** Every check `validateSpec` runs, in the order it runs them. */
export const SPEC_CHECKS: readonly SpecCheckName[] = Object.keys(ALL_CHECKS) as SpecCheckName[];

/** The checks `validateProcess` runs on an `exec --process` document, in order. */
export const PROCESS_CHECK_NAMES: readonly ProcessCheckName[] = Object.keys(PROCESS_CHECKS) as ProcessCheckName[];

/** One failed check: which check and its message. */
export interface SpecProblem {
  readonly check: SpecCheckName;
  readonly message: string;
}

/** Run one named check alone (checks assume nothing about the ones before them). */
export function runSpecCheck(check: SpecCheckName, spec: Spec, ctx: ValidateContext): string | undefined {
  return ALL_CHECKS[check](spec, ctx);
}

/** The first problem the checks find in a spec, or undefined when it passes them all. */
export function findSpecProblem(spec: Spec, ctx: ValidateContext): SpecProblem | undefined {
  for (const check of SPEC_CHECKS) {
    const message = runSpecCheck(check, spec, ctx);
    if (message !== undefined) return { check, message };
  }
  return undefined;
}

/** Run every semantic check on a parsed config.json; throws InvalidArgument on the first failure. */
export function validateSpec(spec: Spec, ctx: ValidateContext): void {
  const problem = findSpecProblem(spec, ctx);
  if (problem !== undefined) throw new TsrunError('InvalidArgument', problem.message);
}

/** Run the process checks on an `exec --process` document; `at` prefixes field paths in messages. */
export function validateProcess(process: Process, at = 'process'): void {
  for (const check of PROCESS_CHECK_NAMES) {
    const message = PROCESS_CHECKS[check](process, at);
    if (message !== undefined) throw new TsrunError('InvalidArgument', message);
  }
}
