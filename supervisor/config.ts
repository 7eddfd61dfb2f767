/*
 * tsrund's settings: defaults ← config file (--config, JSON) ← command-line flags.
 *
 *   {
 *     "socket":     "/run/tsrund/tsrund.sock",   gRPC unix socket (made 0600; peers must be root or tsrund's uid)
 *     "root":       "/var/lib/tsrund",           persistent state: meta.db (SQLite)
 *     "state":      "/run/tsrund",               volatile state
 *     "shimRoot":   "<state>/shims",             one directory per container's shim
 *     "runtime":    "library",                   default runtime: "library" or an OCI runtime binary path
 *     "shimBinary": "<dir of tsrund>/tsrun-shim",
 *     "logLevel":   "info",                      trace|debug|info|warn|error
 *     "allowUids":  [],                          extra uids allowed on the socket
 *     "restartPolicies": true,                   run the tsctl restart-policy loop
 *     "shim":       "native",                    per-container shim: "native" (shim/native/) or "node" (shim/)
 *     "cniBinDirs": ["/usr/lib/cni", "/opt/cni/bin"],   where CNI plugins are looked up
 *     "networkBridge": "tsrun0",                  the default network's bridge device
 *     "iptablesChainPrefix": "TSRUN"              prefix of tsrund's iptables chains
 *   }
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsrunError } from '../spec/errors';
import { isLogLevel, type LogLevel } from './log';

/** Everything tsrund needs to start. */
export interface Config {
  socket: string;
  root: string;
  state: string;
  shimRoot: string;
  runtime: string;
  shimBinary: string | undefined;
  logLevel: LogLevel;
  allowUids: number[];
  restartPolicies: boolean;
  /** which per-container shim new tasks get: the Node tsrun-shim or the native one (docs/native-shim.md) */
  shim: 'node' | 'native';
  /** directories searched for CNI plugins, in order */
  cniBinDirs: string[];
  /** the default network's bridge device (host-wide, so two daemons on one host need two names) */
  networkBridge: string;
  /** prefix of tsrund's iptables chains (host-wide, likewise) */
  iptablesChainPrefix: string;
  /** registries (host[:port] or CIDR) reached over plain HTTP or unverified TLS; loopback always is */
  insecureRegistries: string[];
}

/** What the command line asked for. */
export type ParsedArgs = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: Config };

/** The --help text. */
export const HELP = `tsrund — a containerd-v1-compatible supervisor for tsrun containers

Usage: tsrund [flags]

Runs in the foreground and logs to stderr. Speaks containerd 1.6's gRPC API (Version,
Introspection, Namespaces, Leases, Containers, Tasks, Events) on a unix socket, so the
real 'ctr --address SOCKET' can drive it. One tsrun-shim per container keeps the container
running when tsrund stops; a restarted tsrund re-adopts them.

Flags (each overrides the config file):
  -a, --address PATH     gRPC socket (default /run/tsrund/tsrund.sock); mode 0600, and
                         only root or tsrund's own uid may connect (SO_PEERCRED)
      --root DIR         persistent state: the SQLite metadata (default /var/lib/tsrund)
      --state DIR        volatile state (default /run/tsrund)
      --shim-root DIR    shim state directories (default <state>/shims)
      --runtime R        default runtime of containers: 'library' (the tsrun runtime
                         library inside the shim, fastest) or an OCI runtime binary path
                         (runc, crun, bin/tsrun). A container's runc option binary_name
                         (ctr --runc-binary) overrides it.
      --shim-binary PATH tsrun-shim executable (default: tsrun-shim next to tsrund)
      --log-level LEVEL  trace, debug, info, warn, error (default info)
      --config FILE      JSON config file with the keys socket, root, state, shimRoot,
                         runtime, shimBinary, logLevel, allowUids, restartPolicies, shim,
                         cniBinDirs, networkBridge, iptablesChainPrefix
      --cni-bin-dir DIRS CNI plugin directories, ':'-separated (default /usr/lib/cni:/opt/cni/bin)
                         insecureRegistries
      --no-restart-policies  do not restart containers by their tsctl.restart-policy label
      --shim KIND        per-container shim: native (default; a small C process,
                         docs/native-shim.md) or node (the Node tsrun-shim)
  -h, --help             this text
  -v, --version          print the version
`;

function defaults(): Config {
  return {
    socket: '/run/tsrund/tsrund.sock',
    root: '/var/lib/tsrund',
    state: '/run/tsrund',
    shimRoot: '',
    runtime: 'library',
    shimBinary: undefined,
    logLevel: 'info',
    allowUids: [],
    restartPolicies: true,
    shim: 'native',
    cniBinDirs: ['/usr/lib/cni', '/opt/cni/bin'],
    networkBridge: 'tsrun0',
    iptablesChainPrefix: 'TSRUN',
    insecureRegistries: [],
  };
}

function bad(msg: string): TsrunError {
  return new TsrunError('InvalidArgument', msg);
}

function applyFile(cfg: Config, file: string): void {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw bad(`read config ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(`config ${file}: not a JSON object`);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const str = (): string => {
      if (typeof v !== 'string' || v === '') throw bad(`config ${file}: ${k} must be a non-empty string`);
      return v;
    };
    switch (k) {
      case 'socket':
      case 'root':
      case 'state':
      case 'shimRoot':
      case 'runtime':
        cfg[k] = str();
        break;
      case 'shimBinary':
        cfg.shimBinary = str();
        break;
      case 'logLevel': {
        const l = str();
        if (!isLogLevel(l)) throw bad(`config ${file}: logLevel ${JSON.stringify(l)} is not one of trace, debug, info, warn, error`);
        cfg.logLevel = l;
        break;
      }
      case 'allowUids':
        if (!Array.isArray(v) || !v.every((u) => Number.isInteger(u) && (u as number) >= 0)) {
          throw bad(`config ${file}: allowUids must be a list of uids`);
        }
        cfg.allowUids = v as number[];
        break;
      case 'insecureRegistries':
        if (!Array.isArray(v) || !v.every((h) => typeof h === 'string' && h !== '')) throw bad(`config ${file}: insecureRegistries must be a list of host[:port] or CIDR strings`);
        cfg.insecureRegistries = v as string[];
        break;
      case 'restartPolicies':
        if (typeof v !== 'boolean') throw bad(`config ${file}: restartPolicies must be true or false`);
        cfg.restartPolicies = v;
        break;
      case 'shim':
        if (v !== 'node' && v !== 'native') throw bad(`config ${file}: shim must be "node" or "native"`);
        cfg.shim = v;
        break;
      case 'cniBinDirs':
        if (!Array.isArray(v) || v.length === 0 || !v.every((d) => typeof d === 'string' && d.startsWith('/'))) throw bad(`config ${file}: cniBinDirs must be a list of absolute directories`);
        cfg.cniBinDirs = v as string[];
        break;
      case 'networkBridge':
        if (typeof v !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(v)) throw bad(`config ${file}: networkBridge must be a device name of 1 to 15 characters`);
        cfg.networkBridge = v;
        break;
      case 'iptablesChainPrefix':
        if (typeof v !== 'string' || !/^[A-Z0-9_]{1,12}$/.test(v)) throw bad(`config ${file}: iptablesChainPrefix must be 1 to 12 of A-Z 0-9 _`);
        cfg.iptablesChainPrefix = v;
        break;
      default:
        throw bad(`config ${file}: unknown key ${JSON.stringify(k)}`);
    }
  }
}

/** Parse argv (without node and script) into what to do. Throws InvalidArgument on bad input. */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const flags = new Map<string, string>();
  let noRestart = false;
  const valued: Record<string, string> = {
    '-a': 'address',
    '--address': 'address',
    '--root': 'root',
    '--state': 'state',
    '--shim-root': 'shimRoot',
    '--runtime': 'runtime',
    '--shim-binary': 'shimBinary',
    '--log-level': 'logLevel',
    '--config': 'config',
    '--shim': 'shim',
    '--cni-bin-dir': 'cniBinDirs',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') return { kind: 'help' };
    if (a === '-v' || a === '--version') return { kind: 'version' };
    if (a === '--no-restart-policies') {
      noRestart = true;
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const key = valued[name];
    if (key === undefined) throw bad(`unknown flag ${JSON.stringify(a)} (see --help)`);
    const value = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') throw bad(`flag ${name} needs a value`);
    flags.set(key, value);
  }
  const cfg = defaults();
  const file = flags.get('config');
  if (file !== undefined) applyFile(cfg, file);
  const set = (k: 'root' | 'state' | 'shimRoot' | 'runtime', flag: string): void => {
    const v = flags.get(flag);
    if (v !== undefined) cfg[k] = v;
  };
  const address = flags.get('address');
  if (address !== undefined) cfg.socket = address.replace(/^unix:\/\//, '');
  set('root', 'root');
  set('state', 'state');
  set('shimRoot', 'shimRoot');
  set('runtime', 'runtime');
  const shimBinary = flags.get('shimBinary');
  if (shimBinary !== undefined) cfg.shimBinary = shimBinary;
  const level = flags.get('logLevel');
  if (level !== undefined) {
    if (!isLogLevel(level)) throw bad(`--log-level ${JSON.stringify(level)} is not one of trace, debug, info, warn, error`);
    cfg.logLevel = level;
  }
  if (noRestart) cfg.restartPolicies = false;
  const shim = flags.get('shim');
  if (shim !== undefined) {
    if (shim !== 'node' && shim !== 'native') throw bad(`--shim ${JSON.stringify(shim)} is not node or native`);
    cfg.shim = shim;
  }
  const cniDirs = flags.get('cniBinDirs');
  if (cniDirs !== undefined) cfg.cniBinDirs = cniDirs.split(':').filter((d) => d !== '').map((d) => path.resolve(d));
  if (cfg.shimRoot === '') cfg.shimRoot = path.join(cfg.state, 'shims');
  for (const k of ['socket', 'root', 'state', 'shimRoot'] as const) cfg[k] = path.resolve(cfg[k]);
  if (cfg.runtime !== 'library' && cfg.runtime.includes('/')) cfg.runtime = path.resolve(cfg.runtime);
  return { kind: 'run', config: cfg };
}
