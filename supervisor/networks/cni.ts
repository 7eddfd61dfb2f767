/*
 * A CNI 1.0 executor: runs a network configuration list's plugins for one attachment (container,
 * netns, interface) the way the spec's runtime section says.
 *
 *   ADD    plugins in order; each gets the previous plugin's result as prevResult; the last
 *          result is cached (so DEL and CHECK work after a tsrund restart) and returned.
 *          A failed ADD is followed by a DEL of the whole list (best effort), so a half-made
 *          attachment leaves no veth, rule or address behind.
 *   CHECK  plugins in order with the cached result as prevResult (skipped when disableCheck).
 *   DEL    plugins in reverse order with the cached result as prevResult (none when there is
 *          no cache); idempotent: a second DEL, or a DEL of something never added, succeeds as
 *          long as the plugins say so (they must tolerate missing state, per the spec).
 *
 * Plugins are found by their `type` in the configured directories, get the CNI_* environment and
 * the plugin's configuration (with name, cniVersion, prevResult and the runtimeConfig entries of
 * the capabilities it declares) on stdin, and are killed when a call takes longer than the
 * timeout. A plugin's own error ({code, msg, details} on stdout) is passed on in the message.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { TsrunError } from '../../spec/errors';
import { readRecord, writeAtomic } from './files';
import { runPosixSpawn } from './plugin-spawn';

/** One plugin's configuration inside a list. */
export interface CniPluginConf {
  readonly type: string;
  readonly capabilities?: Readonly<Record<string, boolean>>;
  readonly [key: string]: unknown;
}

/** A network configuration list (a `.conflist`). */
export interface CniConfList {
  readonly cniVersion: string;
  readonly name: string;
  readonly disableCheck?: boolean;
  readonly plugins: readonly CniPluginConf[];
}

/** What one attachment of a network to a container is. */
export interface Attachment {
  readonly containerId: string;
  /** path of the network namespace (a bind-mounted nsfs file) */
  readonly netns: string;
  readonly ifName: string;
  /** CNI_ARGS pairs */
  readonly args?: readonly (readonly [string, string])[];
  /** runtimeConfig values by capability name (portMappings, mac, ips, …) */
  readonly capabilityArgs?: Readonly<Record<string, unknown>>;
}

/** A CNI result (the parts tsrund reads; plugins' other fields are kept as they are). */
export interface CniResult {
  readonly cniVersion?: string;
  readonly interfaces?: readonly { name: string; mac?: string; sandbox?: string }[];
  readonly ips?: readonly { address: string; gateway?: string; interface?: number }[];
  readonly routes?: readonly { dst: string; gw?: string }[];
  readonly dns?: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

/** Where plugins and the result cache live, and how long a plugin call may take. */
export interface CniOptions {
  readonly binDirs: readonly string[];
  /** directory of cached results, one file per attachment */
  readonly cacheDir: string;
  readonly timeoutMs: number;
  /** called with each plugin call's and cache write's duration (tsrund's trace log) */
  readonly trace?: (msg: string, fields: Record<string, string | number>) => void;
}

/** A plugin call's outcome. */
interface PluginRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

const PLUGIN_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Plugins print a result of a few KiB; more than this is not a CNI plugin talking. */
const MAX_OUTPUT = 1 << 20;

/** The executable for a plugin type, from the first directory that has it. */
export function findPlugin(type: string, binDirs: readonly string[]): string {
  if (!PLUGIN_TYPE_RE.test(type)) throw new TsrunError('InvalidArgument', `cni plugin type ${JSON.stringify(type)}: not a plain file name`);
  for (const dir of binDirs) {
    const file = path.join(dir, type);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not in this directory
    }
  }
  throw new TsrunError('NotFound', `cni plugin ${JSON.stringify(type)}: not found in ${binDirs.join(':')}`);
}

/** One plugin call to make: the executable, its environment and stdin, its time limit. */
interface PluginCall {
  readonly file: string;
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: string;
  readonly timeoutMs: number;
}

/**
 * Run one plugin process and call `done` once with its outcome. Self-contained (it uses only its
 * parameters): a worker thread runs this very function from its source text (WORKER_SOURCE), and
 * this thread calls it directly when no worker can be made.
 */
function spawnPluginWith(spawnFn: typeof spawn, m: PluginCall, maxOutput: number, done: (a: RunnerAnswer) => void): void {
  let child;
  try {
    child = spawnFn(m.file, [], { env: m.env, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    done({ error: String((e instanceof Error && e.message) || e) });
    return;
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let size = 0;
  let timedOut = false;
  let failed = false;
  const collect = (into: Buffer[]) => (b: Buffer) => {
    size += b.length;
    if (size <= maxOutput) into.push(b);
  };
  child.stdout.on('data', collect(out));
  child.stderr.on('data', collect(err));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, m.timeoutMs);
  child.on('error', (e) => {
    clearTimeout(timer);
    failed = true;
    done({ error: e.message });
  });
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    if (!failed) done({ code, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
  });
  // A plugin that exits without reading stdin makes the write fail with EPIPE: its exit says why.
  child.stdin.on('error', () => undefined);
  child.stdin.end(m.stdin);
}

/** This thread's way to run a plugin (when no worker thread can). */
function spawnPlugin(m: PluginCall): Promise<RunnerAnswer> {
  return new Promise((resolve) => spawnPluginWith(spawn, m, MAX_OUTPUT, resolve));
}

/** Where koffi is, for the worker threads' posix_spawn (plugin-spawn.ts); undefined: Node's spawn. */
function koffiPath(): string | undefined {
  try {
    return require.resolve('koffi');
  } catch {
    return undefined;
  }
}

/**
 * A worker thread's program: runPosixSpawn for each message, answered with the message's id, or
 * Node's spawn (spawnPluginWith) when libc cannot be bound in this thread.
 */
const WORKER_SOURCE = `
const { spawn } = require('node:child_process');
const { parentPort } = require('node:worker_threads');
const spawnPluginWith = ${spawnPluginWith.toString()};
const runPosixSpawn = ${runPosixSpawn.toString()};
const koffiPath = ${JSON.stringify(koffiPath() ?? null)};
let posix = koffiPath !== null;
parentPort.on('message', (m) => {
  const answer = (a) => parentPort.postMessage({ id: m.id, ...a });
  if (posix) {
    try {
      return runPosixSpawn(koffiPath, m, ${MAX_OUTPUT}, answer);
    } catch {
      posix = false;
    }
  }
  spawnPluginWith(spawn, m, ${MAX_OUTPUT}, answer);
});
`;

/** What the runner answers: a plugin run, or why it could not be started. */
type RunnerAnswer = PluginRun | { readonly error: string };

/** How many worker threads spawn plugins (so that one slow exec does not hold up the next). */
const WORKERS = 2;

/**
 * Plugin processes are spawned from worker threads, not tsrund's main thread: a spawn returns only
 * once the child has exec'd, and on a loaded machine that wait stalled every other request of
 * tsrund, twice per container. They spawn with posix_spawn, not fork (plugin-spawn.ts). Made on
 * first use; a worker that cannot be made (or dies) leaves the spawns to this thread.
 */
function createRunner(): (m: PluginCall) => Promise<RunnerAnswer> {
  interface Slot {
    readonly worker: Worker;
    readonly waiting: Map<number, (a: RunnerAnswer) => void>;
  }
  let slots: Slot[] | undefined;
  let broken = false;
  let nextId = 1;
  let turn = 0;
  const make = (): Slot[] => {
    const made: Slot[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      const slot: Slot = { worker, waiting: new Map() };
      worker.unref();
      worker.on('message', (a: RunnerAnswer & { id: number }) => {
        const w = slot.waiting.get(a.id);
        slot.waiting.delete(a.id);
        if (slot.waiting.size === 0) worker.unref();
        w?.(a);
      });
      const lost = (why: string) => {
        broken = true;
        for (const w of slot.waiting.values()) w({ error: `the plugin runner thread ${why}` });
        slot.waiting.clear();
      };
      worker.on('error', (e) => lost(`failed: ${e.message}`));
      worker.on('exit', (code) => lost(`exited (${code})`));
      made.push(slot);
    }
    return made;
  };
  return (m) => {
    if (!broken && slots === undefined) {
      try {
        slots = make();
      } catch {
        broken = true;
      }
    }
    if (broken || slots === undefined) return spawnPlugin(m);
    const slot = slots[turn++ % slots.length]!;
    const id = nextId++;
    return new Promise((resolve) => {
      if (slot.waiting.size === 0) slot.worker.ref();
      slot.waiting.set(id, resolve);
      slot.worker.postMessage({ id, ...m });
    });
  };
}

const runner = createRunner();

async function runPlugin(file: string, env: NodeJS.ProcessEnv, stdin: string, timeoutMs: number): Promise<PluginRun> {
  const a = await runner({ file, env, stdin, timeoutMs });
  if ('error' in a) throw new TsrunError('Internal', `run cni plugin ${file}: ${a.error}`);
  return a;
}

/** The configuration a plugin reads on stdin. */
export function pluginStdin(list: CniConfList, plugin: CniPluginConf, prevResult: CniResult | undefined, capabilityArgs: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  delete conf['runtimeConfig'];
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && capabilityArgs?.[cap] !== undefined) runtimeConfig[cap] = capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length > 0) conf['runtimeConfig'] = runtimeConfig;
  if (prevResult !== undefined) conf['prevResult'] = prevResult;
  return conf;
}

type Command = 'ADD' | 'CHECK' | 'DEL';

async function invoke(cmd: Command, list: CniConfList, plugin: CniPluginConf, att: Attachment, prev: CniResult | undefined, opts: CniOptions): Promise<CniResult | undefined> {
  const file = findPlugin(plugin.type, opts.binDirs);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: att.containerId,
    CNI_NETNS: att.netns,
    CNI_IFNAME: att.ifName,
    CNI_PATH: opts.binDirs.join(':'),
  };
  if (att.args !== undefined && att.args.length > 0) env['CNI_ARGS'] = att.args.map(([k, v]) => `${k}=${v}`).join(';');
  const stdin = JSON.stringify(pluginStdin(list, plugin, prev, att.capabilityArgs));
  const t0 = performance.now();
  const r = await runPlugin(file, env, stdin, opts.timeoutMs);
  opts.trace?.('cni plugin', { plugin: plugin.type, command: cmd, network: list.name, container: att.containerId, ifName: att.ifName, exit: r.code ?? String(r.signal), ms: Math.round(performance.now() - t0) });
  const what = `cni plugin ${plugin.type} (network ${list.name}) ${cmd}`;
  if (r.timedOut) throw new TsrunError('Unavailable', `${what}: timed out after ${opts.timeoutMs} ms`);
  if (r.code !== 0) throw pluginError(what, r);
  if (cmd !== 'ADD') return undefined;
  try {
    const res = JSON.parse(r.stdout) as unknown;
    if (typeof res !== 'object' || res === null || Array.isArray(res)) throw new Error('not a JSON object');
    return res as CniResult;
  } catch (e) {
    throw new TsrunError('Internal', `${what}: bad result ${JSON.stringify(r.stdout.slice(0, 200))}: ${(e as Error).message}`);
  }
}

/** A plugin's failure as our error: its {code, msg, details} when it printed them. */
function pluginError(what: string, r: PluginRun): TsrunError {
  let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  try {
    const v = JSON.parse(r.stdout) as unknown;
    if (typeof v === 'object' && v !== null) parsed = v as typeof parsed;
  } catch {
    parsed = undefined;
  }
  const status = r.signal !== null ? `killed by ${r.signal}` : `exit status ${r.code}`;
  if (parsed !== undefined && typeof parsed.msg === 'string') {
    const details = typeof parsed.details === 'string' && parsed.details !== '' ? `: ${parsed.details}` : '';
    const code = typeof parsed.code === 'number' ? ` (cni error code ${parsed.code})` : '';
    return new TsrunError(codeFor(parsed.code), `${what}: ${parsed.msg}${details}${code}`);
  }
  const text = (r.stderr.trim() || r.stdout.trim()).slice(0, 500);
  return new TsrunError('Internal', `${what}: ${status}${text === '' ? '' : `: ${text}`}`);
}

/** CNI's well-known error codes (spec "Error" section) as ours. */
function codeFor(code: unknown): 'InvalidArgument' | 'Unavailable' | 'NotFound' | 'Internal' {
  switch (code) {
    case 1: // incompatible CNI version
    case 4: // invalid necessary environment variables
    case 6: // failed to decode content
    case 7: // invalid network config
      return 'InvalidArgument';
    case 11: // try again later
      return 'Unavailable';
    case 3: // container unknown or does not exist
      return 'NotFound';
    default:
      return 'Internal';
  }
}

/** The cache file of one attachment. */
export function cacheFile(cacheDir: string, network: string, att: Pick<Attachment, 'containerId' | 'ifName'>): string {
  return path.join(cacheDir, `${network}-${att.containerId}-${att.ifName}`);
}

/** What the cache keeps of an attachment: enough to DEL it after a restart. */
export interface CacheEntry {
  readonly kind: 'cniCacheV1';
  readonly containerId: string;
  readonly ifName: string;
  readonly networkName: string;
  readonly netns: string;
  readonly config: CniConfList;
  readonly cniArgs?: readonly (readonly [string, string])[];
  readonly capabilityArgs?: Readonly<Record<string, unknown>>;
  readonly result?: CniResult;
}

/**
 * Read one cache entry, or undefined when there is none, or when the file is torn (a crash of the
 * machine before it reached the disk: it is written without fsync): a DEL then runs without a
 * cached result, as for a missing entry, and removes the file.
 */
export function readCache(file: string): CacheEntry | undefined {
  const r = readRecord<CacheEntry>(file);
  if (r.kind !== 'ok') return undefined;
  if (r.value.kind !== 'cniCacheV1') throw new TsrunError('Internal', `cni cache ${file}: unknown kind ${JSON.stringify(r.value.kind)}`);
  return r.value;
}

/**
 * Atomic against a kill of tsrund (temp → rename), not fsynced: it is written twice per ADD, and
 * an fsync waits on the disk. A file torn by a machine crash reads as none (readCache, scanCache).
 */
function writeCache(file: string, entry: CacheEntry, opts: CniOptions): void {
  const t0 = performance.now();
  writeAtomic(file, JSON.stringify(entry));
  opts.trace?.('cni cache write', { container: entry.containerId, ifName: entry.ifName, ms: Math.round(performance.now() - t0) });
}

/** One read of the cache directory: the whole entries, and the files torn by a machine crash. */
export interface CacheScan {
  readonly entries: CacheEntry[];
  /** paths of files that hold no whole entry; their network, container id and interface are known
   *  only from the name (cacheFile's `<network>-<container id>-<ifName>`) */
  readonly torn: string[];
}

/**
 * Every cache file in the directory (for reconciling after a crash), or only those of one
 * container id: their file names hold it, so the others are not read. Each file is read once.
 */
export function scanCache(cacheDir: string, containerId?: string): CacheScan {
  let names: string[];
  try {
    names = fs.readdirSync(cacheDir);
  } catch {
    return { entries: [], torn: [] };
  }
  const entries: CacheEntry[] = [];
  const torn: string[] = [];
  for (const n of names) {
    if (n.endsWith('.tmp')) continue;
    if (containerId !== undefined && !n.includes(`-${containerId}-`)) continue;
    const file = path.join(cacheDir, n);
    const r = readRecord<CacheEntry>(file);
    if (r.kind === 'torn') torn.push(file);
    if (r.kind !== 'ok') continue;
    if (r.value.kind !== 'cniCacheV1') throw new TsrunError('Internal', `cni cache ${file}: unknown kind ${JSON.stringify(r.value.kind)}`);
    if (containerId === undefined || r.value.containerId === containerId) entries.push(r.value);
  }
  return { entries, torn };
}

/** The whole cache entries (scanCache). */
export function listCache(cacheDir: string, containerId?: string): CacheEntry[] {
  return scanCache(cacheDir, containerId).entries;
}

/**
 * ADD the list to the attachment. The cache is written before the first plugin runs (without a
 * result), so a tsrund killed in the middle still knows to DEL what the plugins may have made.
 */
export async function addNetworkList(list: CniConfList, att: Attachment, opts: CniOptions): Promise<CniResult> {
  const file = cacheFile(opts.cacheDir, list.name, att);
  const base: CacheEntry = {
    kind: 'cniCacheV1',
    containerId: att.containerId,
    ifName: att.ifName,
    networkName: list.name,
    netns: att.netns,
    config: list,
    ...(att.args !== undefined ? { cniArgs: att.args } : {}),
    ...(att.capabilityArgs !== undefined ? { capabilityArgs: att.capabilityArgs } : {}),
  };
  writeCache(file, base, opts);
  let prev: CniResult | undefined;
  try {
    for (const plugin of list.plugins) prev = await invoke('ADD', list, plugin, att, prev, opts);
  } catch (e) {
    try {
      await delNetworkList(list, att, opts);
    } catch (cleanup) {
      if (e instanceof TsrunError) throw new TsrunError(e.code, e.message, { cause: e, cleanup: [cleanup as Error] });
    }
    throw e;
  }
  if (prev === undefined) throw new TsrunError('InvalidArgument', `network ${list.name}: the configuration list has no plugins`);
  writeCache(file, { ...base, result: prev }, opts);
  return prev;
}

/** CHECK the attachment against its cached result. */
export async function checkNetworkList(list: CniConfList, att: Attachment, opts: CniOptions): Promise<void> {
  if (list.disableCheck === true) return;
  const cached = readCache(cacheFile(opts.cacheDir, list.name, att));
  if (cached?.result === undefined) throw new TsrunError('NotFound', `network ${list.name}: no cached result for container ${att.containerId} interface ${att.ifName}`);
  for (const plugin of list.plugins) await invoke('CHECK', list, plugin, att, cached.result, opts);
}

/** DEL the attachment (reverse order, cached result as prevResult), then drop its cache. */
export async function delNetworkList(list: CniConfList, att: Attachment, opts: CniOptions): Promise<void> {
  const file = cacheFile(opts.cacheDir, list.name, att);
  const cached = readCache(file);
  const prev = cached?.result;
  const withCached: Attachment = cached === undefined ? att : { ...att, ...(cached.capabilityArgs !== undefined && att.capabilityArgs === undefined ? { capabilityArgs: cached.capabilityArgs } : {}) };
  for (const plugin of [...list.plugins].reverse()) {
    try {
      findPlugin(plugin.type, opts.binDirs);
    } catch {
      // Not installed: it never ran here (an ADD with it fails first), so it has nothing to undo.
      continue;
    }
    await invoke('DEL', list, plugin, withCached, prev, opts);
  }
  fs.rmSync(file, { force: true });
}

/** DEL from a cache entry alone (the network may be gone from the store, e.g. after a crash). */
export async function delFromCache(entry: CacheEntry, opts: CniOptions): Promise<void> {
  await delNetworkList(entry.config, attachmentOf(entry), opts);
}

/** The attachment a cache entry describes. */
export function attachmentOf(entry: CacheEntry): Attachment {
  return {
    containerId: entry.containerId,
    netns: entry.netns,
    ifName: entry.ifName,
    ...(entry.cniArgs !== undefined ? { args: entry.cniArgs } : {}),
    ...(entry.capabilityArgs !== undefined ? { capabilityArgs: entry.capabilityArgs } : {}),
  };
}
