/*
 * create: config.json → parseSpec → validateSpec → probeHost → buildPlan → encodePlan →
 * native.spawn → sync messages → state saved. A failure at any step undoes every earlier one:
 * no state directory, fifo, pid file or process is left behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSpec, validateSpec, type Spec } from '../../spec';
import { TsrunError, describeErrno, wrapSystemError } from '../../spec/errors';
import * as native from '../native';
import { probeHost, type HostFacts } from '../host/probe';
import { bindSources, buildPlan, createsUserNamespace, idmapRequests, type StdioFds } from '../plan/build';
import { encodePlan } from '../plan/encode';
import { HOOK_PHASE } from '../plan/ops';
import { INIT, childSyncSteps, hooksStep, reapStep, runSteps, spawnStep, type Steps } from './child-sync';
import type { HookState } from './hooks';
import { lockNew } from './lock';
import { namespaceLinks } from './processes';
import { readConfigFile } from './config-file';
import { checkNamespacePaths, joinedNamespaces } from './ns-paths';
import { writeIdMaps } from './userns';
import { checkConsole, deliverConsole } from './console';
import { compileSeccomp } from '../seccomp/compile';
import { containerCgroup, containerCgroupPath, openCgroupJoin } from './cgroup';
import type { CgroupDriver } from '../cgroups/driver';
import { checkId, containerPaths, crashPoint, publishContainerDir, readState, removeContainerDir, writeState, STATE_VERSION, type ContainerState, type ProcessIdentity } from './state-store';
import { isCreatorAlive, parseProcStat } from './status';
import { unmountUnder } from './host-mounts';

/** Options of `create` (and the create half of `run`). */
export interface CreateOptions {
  readonly root: string;
  readonly id: string;
  readonly bundle: string;
  readonly pidFile?: string | undefined;
  readonly noPivot: boolean;
  readonly noNewKeyring: boolean;
  readonly preserveFds: number;
  readonly systemdCgroup: boolean;
  /** --console-socket: where the pty master of process.terminal goes. */
  readonly consoleSocket?: string | undefined;
  /**
   * This process's fds that init gets as 0, 1 and 2 (-1: the inherited one), set by the helper in
   * the child: a caller serving several containers (the shim) keeps its own 0-2 as they are.
   */
  readonly stdio?: StdioFds | undefined;
  /** Foreground run without --console-socket: receives the pty master of process.terminal. */
  readonly onConsole?: ((master: number) => void) | undefined;
  /** The caller returns without waiting (create, run -d): a terminal then needs a console socket. */
  readonly detached?: boolean | undefined;
  /** Where --debug output goes. */
  readonly debug?: ((msg: string) => void) | undefined;
  /** Where warnings go (e.g. cgroups a rootless runtime cannot use). */
  readonly warn?: ((msg: string) => void) | undefined;
  /**
   * The plan is spawned by another process (the native shim's SPAWN_PLAN): the fds it names are
   * numbered for that process, stdio at remoteFdBase + 0..2 (the spawner's own) and then, from
   * remoteFdBase + 3, ours that the spawn step passes along in order (cgroup joins, idmapped
   * trees). Socket activation does not apply (our LISTEN_FDS are not the spawner's).
   */
  readonly remoteFdBase?: number | undefined;
  /**
   * false: the final state.json goes temp → rename without the two fsyncs (file and directory).
   * For a root on volatile state that nothing reads after a reboot (tsrund's shim directories,
   * whose other files are written the same way); the fsyncs cost ~5-20 ms on a disk-backed /run.
   */
  readonly durableState?: boolean | undefined;
}

/** How long set-up may go without a message from init before we give up. */

/** Load and check <bundle>/config.json. */
export function loadBundle(bundle: string, host: HostFacts, systemdCgroup: boolean): Spec {
  const configPath = path.join(bundle, 'config.json');
  const spec = parseSpec(readConfigFile(configPath), configPath);
  validateSpec(spec, { bundle, hasSystemd: host.hasSystemd, systemdCgroup });
  checkNamespacePaths(joinedNamespaces(spec));
  if (systemdCgroup && !host.hasSystemd) {
    throw new TsrunError('FailedPrecondition', 'systemd cgroup driver requested (--systemd-cgroup) but systemd is not running on this host (no /run/systemd/system)');
  }
  if (!spec.process) throw new TsrunError('InvalidArgument', `${configPath}: process: required to create a container`);
  return spec;
}

function statKind(p: string): 'dir' | 'file' | 'missing' {
  try {
    return fs.statSync(p).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

/** Write the pid file atomically, as a bare decimal without a newline (containerd parses it with Atoi). */
export function writePidFile(file: string, pid: number): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    // A host path from --pid-file, never under a rootfs; written to a temp name and renamed into place.
    // eslint-disable-next-line no-restricted-properties
    fs.writeFileSync(tmp, String(pid), { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw wrapSystemError(`write pid file ${file}`, err);
  }
}

/** Create a container: on return init is blocked on the exec fifo and state.json is saved. */
export function createContainer(opts: CreateOptions): ContainerState {
  return runSteps(createSteps(opts));
}

/** createContainer as steps (child-sync.ts Step): the spawn, each wait for init and the hooks. */
export function* createSteps(opts: CreateOptions): Steps<ContainerState> {
  const bundle = path.resolve(opts.bundle);
  try {
    if (!fs.statSync(bundle).isDirectory()) throw new TsrunError('InvalidArgument', `bundle ${bundle}: not a directory`);
  } catch (err) {
    throw wrapSystemError(`bundle ${bundle}`, err);
  }
  const host = probeHost();
  const spec = loadBundle(bundle, host, opts.systemdCgroup);
  const rootfs = path.resolve(bundle, spec.root?.path ?? 'rootfs');
  if (statKind(rootfs) !== 'dir') {
    throw new TsrunError('NotFound', `rootfs ${rootfs}: ${statKind(rootfs) === 'missing' ? 'no such file or directory' : 'not a directory'}`);
  }
  const pidFile = opts.pidFile ? path.resolve(opts.pidFile) : undefined;
  checkConsole(spec.process?.terminal === true, opts.consoleSocket, opts.detached !== false);

  checkId(opts.id);
  const rootless = (process.geteuid?.() ?? 0) !== 0;
  const cgroupPath = containerCgroupPath(spec.linux?.cgroupsPath, opts.id, opts.systemdCgroup, host.hasSystemd);
  const created = (type: string): boolean => (spec.linux?.namespaces ?? []).some((n) => n.type === type && !n.path);
  const hostMounts = !(spec.linux?.namespaces ?? []).some((n) => n.type === 'mount');
  const annotations = spec.annotations ?? {};
  // The first record, before any side effect: it names what the container will own, so a
  // create killed at any later point leaves something `state` reports and `delete` removes.
  let record: ContainerState = {
    version: STATE_VERSION,
    ociVersion: spec.ociVersion,
    id: opts.id,
    pid: 0,
    pidStartTime: '',
    bundle,
    rootfs,
    created: rfc3339(new Date()),
    owner: '',
    annotations,
    hooks: { poststart: spec.hooks?.poststart ?? [], poststop: spec.hooks?.poststop ?? [] },
    namespaces: {},
    processScope: created('pid') ? 'pid' : created('mount') ? 'mnt' : 'init',
    cgroupPath,
    ...(hostMounts ? { hostMounts } : {}),
    creating: selfIdentity(),
  };
  const { paths, lock } = publishOrExplain(opts.root, record);
  let child: native.Spawned | undefined;
  let cgroup: CgroupDriver | undefined;
  const idmapFds: Record<number, number> = {};
  let wrotePidFile = false;
  try {
    crashPoint('published');
    native.mkfifo(paths.fifo, 0o622);
    let cg: CgroupDriver | undefined = containerCgroup(cgroupPath);
    try {
      cg.create();
      cgroup = cg;
      crashPoint('cgroup');
      cg.apply(spec.linux?.resources ?? {});
    } catch (err) {
      // A rootless runtime usually may not write the cgroup tree: go on without one and say so.
      if (!rootless || !(err instanceof TsrunError) || !['EACCES', 'EPERM', 'EROFS'].includes(err.errno ?? '')) throw err;
      if (cgroup) cgroup.destroy();
      cgroup = undefined;
      cg = undefined;
      opts.warn?.(`cgroups skipped: ${err.message} (rootless: no resource limits, pause, or cgroup-wide kill)`);
    }
    const sourceKinds = Object.fromEntries(bindSources(spec, bundle).map((s) => [s, statKind(s)]));
    const seccomp = spec.linux?.seccomp ? compileSeccomp(spec.linux.seccomp) : undefined;
    for (const r of idmapRequests(spec, bundle)) {
      idmapFds[r.index] = native.idmappedTree(r.source, r.uidMap, r.gidMap, r.recursive, r.attrSet, r.attrClr);
    }
    if (seccomp && seccomp.unknownSyscalls.length > 0) {
      opts.debug?.(`seccomp: syscalls this kernel or libseccomp does not know were skipped: ${seccomp.unknownSyscalls.join(' ')}`);
    }
    // Socket activation (sd_listen_fds(3)): fds 3..3+n-1 go to the container ahead of
    // --preserve-fds, and the program is told about them, as runc does.
    const remote = opts.remoteFdBase;
    const listen = remote === undefined ? listenFds(process.env) : 0;
    // Renumbered for a remote spawner (see remoteFdBase); our own numbers otherwise.
    const passed: number[] = [];
    const planFd = (fd: number): number => (remote === undefined ? fd : remote + 3 + passed.push(fd) - 1);
    const planSpec: Spec = listen > 0 && spec.process
      ? { ...spec, process: { ...spec.process, env: [...(spec.process.env ?? []), `LISTEN_FDS=${listen}`, 'LISTEN_PID=1'] } }
      : spec;
    // Init joins its cgroup itself, through fds we open (see openCgroupJoin).
    const join = cg ? openCgroupJoin(cg) : undefined;
    try {
      const plan = buildPlan(planSpec, host, {
        id: opts.id,
        bundle,
        rootfs,
        execFifo: paths.fifo,
        noPivot: opts.noPivot,
        noNewKeyring: opts.noNewKeyring,
        seccomp,
        cgroupPaths: cg?.paths() ?? {},
        rootless,
        idmapFds: Object.fromEntries(Object.entries(idmapFds).map(([k, fd]) => [k, planFd(fd)])),
        preserveFds: listen + opts.preserveFds,
        sourceKinds,
        stdio: remote === undefined ? opts.stdio : [remote, remote + 1, remote + 2],
        cgroupJoin: join?.ops.map((o) => ({ ...o, fd: planFd(o.fd) })),
      });
      child = yield* spawnStep(encodePlan(plan), passed);
    } finally {
      // The child has its own copies from clone; it joins through them and closes them.
      join?.close();
    }
    crashPoint('spawn');
    // The record names the process to kill should this create die: init, or, when init is born
    // only after pivot_root (a shared pid namespace: see docs/native-helper.md), the set-up
    // process until init's pid arrives.
    const ownPidNs = fs.readlinkSync('/proc/self/ns/pid');
    const track = (pid: number): void => {
      const startTime = parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))?.startTime ?? '';
      // The set-up process is in our pid namespace, which is no container's.
      const { pid: pidNs, ...links } = namespaceLinks(pid);
      const namespaces = pidNs !== undefined && pidNs !== ownPidNs ? { ...links, pid: pidNs } : links;
      record = { ...record, pid, pidStartTime: startTime, namespaces, cgroupPath: cg ? cgroupPath : undefined };
      writeState(opts.root, record, false);
    };
    track(child.pid);
    crashPoint('spawned');
    const syncFd = child.syncFd;
    // runtime-spec: hooks in the runtime's namespace see init's host pid, hooks in the
    // container's namespace see the pid as the container does. Before init exists, both get the
    // set-up process's host pid: it is in every namespace of the container but the pid namespace.
    let initPid = child.pid;
    const hookState = (status: string, pid = initPid): HookState => ({ ociVersion: spec.ociVersion, id: opts.id, status, pid, bundle, annotations });
    if (createsUserNamespace(spec)) {
      writeIdMaps(child.pid, spec.linux?.uidMappings ?? [], spec.linux?.gidMappings ?? [], process.getuid?.() !== 0);
    }
    const goDocs = (who: string): Buffer => {
      const nsPid = innermostPid(initPid);
      opts.debug?.(`${who}: host pid ${initPid}, pid ${nsPid} in its namespace`);
      return Buffer.from(`${JSON.stringify(hookState('creating', nsPid))}\0${JSON.stringify(hookState('created', nsPid))}\0`);
    };
    const spawned = child;
    const report = yield* childSyncSteps(spawned, INIT, goDocs('spawned init (or the set-up process that clones it after pivot_root)'), {
      onConsole: (fd) => deliverConsole(opts.consoleSocket, opts.onConsole, fd),
      onSeccomp: (fd) => sendToSeccompAgent(spec, fd, hookState('creating')),
      onHooks: function* (stage) {
        if (stage !== HOOK_PHASE.CREATE_RUNTIME) throw new TsrunError('Internal', `container init asked for the hooks of unknown stage ${stage}`);
        crashPoint('hooks');
        // runtime-spec: prestart hooks see the state as "created" (crun does the same);
        // createRuntime hooks run during create, so "creating".
        yield* hooksStep('prestart', spec.hooks?.prestart, hookState('created'));
        yield* hooksStep('createRuntime', spec.hooks?.createRuntime, hookState('creating'));
      },
      onPid: function* (pid) {
        // Init is born (after pivot_root); the set-up process that cloned it exits. Reap it, and
        // give init its own GO, whose hook states carry its pid.
        const setup = child?.pid ?? spawned.pid;
        yield* reapStep(setup);
        child = { pid, syncFd };
        initPid = pid;
        track(initPid);
        return goDocs('init born after pivot_root');
      },
    });
    opts.debug?.(`init reports: ${report}`);
    crashPoint('created');
    const { creating: _creator, ...finished } = record;
    const state: ContainerState = { ...finished, created: rfc3339(new Date()), namespaces: namespaceLinks(child.pid) };
    writeState(opts.root, state, opts.durableState ?? true);
    crashPoint('state');
    if (pidFile) {
      writePidFile(pidFile, child.pid);
      wrotePidFile = true;
    }
    fs.closeSync(child.syncFd);
    return state;
  } catch (err) {
    const cleanup: Error[] = [];
    const attempt = (fn: () => void): void => {
      try {
        fn();
      } catch (e) {
        cleanup.push(e as Error);
      }
    };
    if (child) {
      const c = child;
      // Init may already be dead and reaped (initVanished does that): ESRCH and ECHILD are fine.
      attempt(() => ignoring(['ESRCH'], () => process.kill(c.pid, 'SIGKILL')));
      try {
        yield* reapStep(c.pid);
      } catch (e) {
        cleanup.push(e as Error);
      }
      attempt(() => fs.closeSync(c.syncFd));
    }
    if (cgroup) {
      const cg = cgroup;
      attempt(() => cg.destroy());
    }
    if (hostMounts) attempt(() => void unmountUnder(rootfs));
    if (wrotePidFile && pidFile) attempt(() => fs.rmSync(pidFile, { force: true }));
    // With something left behind, the record stays: it is what lets `delete --force` finish the job.
    if (cleanup.length === 0) attempt(() => removeContainerDir(opts.root, opts.id));
    const e = err instanceof TsrunError ? err : wrapSystemError(`create container ${opts.id}`, err);
    if (cleanup.length === 0) throw e;
    throw new TsrunError(e.code, e.message, { cause: e, cleanup, ...(e.errno ? { errno: e.errno } : {}), ...(e.stage ? { stage: e.stage } : {}) });
  } finally {
    // Init has its own copies (or failed); ours only had to survive until the clone.
    for (const fd of Object.values(idmapFds)) fs.closeSync(fd);
    lock.release();
  }
}

let self: ProcessIdentity | undefined;

/** This process, as the `creating` field of a record names it (read once: a long-lived caller such as tsrund creates many). */
function selfIdentity(): ProcessIdentity {
  if (self !== undefined && self.pid === process.pid) return self;
  const me = { pid: process.pid, startTime: parseProcStat(fs.readFileSync('/proc/self/stat', 'utf8'))?.startTime ?? '' };
  if (me.startTime !== '') self = me;
  return me;
}

/** publishContainerDir, with an AlreadyExists that says when the id is held by a create that died. */
function publishOrExplain(root: string, record: ContainerState): ReturnType<typeof publishContainerDir<ReturnType<typeof lockNew>>> {
  try {
    return publishContainerDir(root, record, lockNew);
  } catch (err) {
    if (!(err instanceof TsrunError) || err.code !== 'AlreadyExists') throw err;
    let left: ContainerState | undefined;
    try {
      left = readState(root, record.id);
    } catch {
      left = undefined;
    }
    if (left !== undefined && left.creating !== undefined && !isCreatorAlive(left.creating)) {
      throw new TsrunError('AlreadyExists', `container with id ${record.id} already exists: a create of it (pid ${left.creating.pid}) was killed half-way; \`delete --force ${record.id}\` removes what it left`, { cause: err });
    }
    throw err;
  }
}

/**
 * Hand the seccomp listener fd to the agent at linux.seccomp.listenerPath: one message whose data
 * is the container process state (runtime-spec's seccomp user notification, as runc sends it) and
 * whose SCM_RIGHTS carries the fd. Our copy is closed either way.
 */
export function sendToSeccompAgent(spec: Spec, listenerFd: number, state: HookState): void {
  const listenerPath = spec.linux?.seccomp?.listenerPath;
  try {
    if (listenerFd < 0) throw new TsrunError('Internal', 'container init sent no seccomp listener fd');
    if (!listenerPath) throw new TsrunError('InvalidArgument', 'linux.seccomp.listenerPath: required for SCMP_ACT_NOTIFY');
    const doc = {
      ociVersion: spec.ociVersion,
      fds: ['seccompFd'],
      pid: state.pid,
      metadata: spec.linux?.seccomp?.listenerMetadata ?? '',
      state: { ...state },
    };
    const sock = native.unixConnect(listenerPath);
    try {
      native.sendFd(sock, listenerFd, JSON.stringify(doc));
    } finally {
      fs.closeSync(sock);
    }
  } finally {
    if (listenerFd >= 0) fs.closeSync(listenerFd);
  }
}

function ignoring(errnos: readonly string[], fn: () => void): void {
  try {
    fn();
  } catch (err) {
    const code = err instanceof TsrunError ? err.errno : (err as NodeJS.ErrnoException).code;
    if (code === undefined || !errnos.includes(code)) throw err;
  }
}

/** How many socket-activation fds this process was given: LISTEN_FDS when LISTEN_PID is us. */
export function listenFds(env: NodeJS.ProcessEnv, pid = process.pid): number {
  const n = Number(env['LISTEN_FDS']);
  if (!Number.isInteger(n) || n <= 0 || Number(env['LISTEN_PID']) !== pid) return 0;
  return n;
}

/** A process's pid in its own (innermost) pid namespace, from the NSpid line of /proc/<pid>/status. */
function innermostPid(pid: number): number {
  try {
    const line = /^NSpid:\s*(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    const last = line?.trim().split(/\s+/).pop();
    return last ? parseInt(last, 10) : pid;
  } catch {
    return pid;
  }
}

/** RFC 3339 with fractional seconds trimmed the way Go's RFC3339Nano does. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.?0+Z$/, 'Z');
}

/** Paths for a container id (re-exported for commands). */
export { containerPaths };
