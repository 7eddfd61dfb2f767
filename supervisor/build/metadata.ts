/*
 * The instructions that only change an image's config (CMD ENTRYPOINT ENV EXPOSE LABEL USER WORKDIR
 * VOLUME STOPSIGNAL SHELL ONBUILD MAINTAINER), applied as docker's classic builder does; used by
 * `tsctl build` and `tsctl commit --change`. Pure.
 */
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { lineError, type Instruction } from './dockerfile';
import type { OciConfig } from './layer';
import { keyValues, processWord, processWords, type Vars } from './substitute';

/** What `commit --change` accepts (docker's list, HEALTHCHECK aside). */
export const CHANGE_INSTRUCTIONS = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR']);
/** Every instruction this file handles. */
export const METADATA_INSTRUCTIONS = new Set([...CHANGE_INSTRUCTIONS, 'SHELL', 'MAINTAINER']);

/** Per-stage facts the rules depend on. */
export interface StageFlags {
  /** CMD was set in this stage (ENTRYPOINT then keeps it) */
  cmdSet: boolean;
}

/** The shell of shell-form commands: SHELL's, else /bin/sh -c. */
export function shellOf(cfg: OciConfig): string[] {
  return cfg.config.Shell !== undefined && cfg.config.Shell.length > 0 ? [...cfg.config.Shell] : ['/bin/sh', '-c'];
}

/** The config's environment as substitution variables. */
export function envVars(env: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const eq = e.indexOf('=');
    if (eq > 0) m.set(e.slice(0, eq), e.slice(eq + 1));
    else m.set(e, '');
  }
  return m;
}

/** Set `key` in an Env list, keeping its place when present. */
export function setEnv(env: string[], key: string, value: string): void {
  const i = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (i >= 0) env[i] = `${key}=${value}`;
  else env.push(`${key}=${value}`);
}

function exposeKeys(words: readonly string[], line: number): string[] {
  const out: string[] = [];
  for (const w of words) {
    const m = /^(?:[0-9.]+:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
    if (m === null) throw lineError(line, `EXPOSE: invalid port ${JSON.stringify(w)}: want PORT[-PORT][/tcp|udp|sctp]`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 1 || hi > 65535 || hi < lo) throw lineError(line, `EXPOSE: invalid port range ${JSON.stringify(w)}`);
    for (let p = lo; p <= hi; p++) out.push(`${p}/${(m[3] ?? 'tcp').toLowerCase()}`);
  }
  return out;
}

/**
 * Apply one metadata instruction to `cfg`; returns the history text (docker's `#(nop)` form).
 * `vars` are the substitution variables (build args then ENV).
 */
export function applyMetadata(cfg: OciConfig, ins: Instruction, vars: Vars, escape: string, flags: StageFlags): string {
  const c = cfg.config;
  const word = (t: string): string => processWord(t, vars, escape);
  const sub = (t: string): string[] => processWords(t, vars, escape);
  const shellForm = (): string[] => [...shellOf(cfg), ins.args];
  try {
    switch (ins.cmd) {
      case 'CMD':
        c.Cmd = ins.json !== undefined ? [...ins.json] : shellForm();
        flags.cmdSet = true;
        return `CMD ${JSON.stringify(c.Cmd)}`;
      case 'ENTRYPOINT':
        c.Entrypoint = ins.json !== undefined ? [...ins.json] : ins.args.trim() === '' ? null : shellForm();
        // docker: an ENTRYPOINT drops a CMD inherited from the base image
        if (!flags.cmdSet) c.Cmd = null;
        return `ENTRYPOINT ${JSON.stringify(c.Entrypoint)}`;
      case 'ENV': {
        const env = [...(c.Env ?? [])];
        const pairs = keyValues(ins.args, vars, escape, 'ENV');
        for (const [k, v] of pairs) setEnv(env, k, v);
        c.Env = env;
        return `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
      }
      case 'LABEL': {
        const pairs = keyValues(ins.args, vars, escape, 'LABEL');
        c.Labels = { ...(c.Labels ?? {}) };
        for (const [k, v] of pairs) c.Labels[k] = v;
        return `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
      }
      case 'EXPOSE': {
        const keys = exposeKeys(sub(ins.args), ins.line);
        if (keys.length === 0) throw lineError(ins.line, 'EXPOSE requires at least one argument');
        c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
        for (const k of keys) c.ExposedPorts[k] = {};
        return `EXPOSE ${keys.join(' ')}`;
      }
      case 'USER': {
        const u = word(ins.args.trim());
        if (u === '') throw lineError(ins.line, 'USER requires exactly one argument');
        c.User = u;
        return `USER ${u}`;
      }
      case 'WORKDIR': {
        const w = word(ins.args.trim());
        if (w === '') throw lineError(ins.line, 'WORKDIR requires exactly one argument');
        c.WorkingDir = path.posix.resolve(c.WorkingDir !== undefined && c.WorkingDir !== '' ? c.WorkingDir : '/', w);
        return `WORKDIR ${c.WorkingDir}`;
      }
      case 'VOLUME': {
        const vols = ins.json !== undefined ? ins.json.map(word) : sub(ins.args);
        if (vols.length === 0 || vols.some((v) => v.trim() === '')) throw lineError(ins.line, 'VOLUME specified can not be an empty string');
        c.Volumes = { ...(c.Volumes ?? {}) };
        for (const v of vols) c.Volumes[v] = {};
        return `VOLUME ${JSON.stringify(vols)}`;
      }
      case 'STOPSIGNAL': {
        const s = word(ins.args.trim());
        if (!/^(SIG)?[A-Z0-9+-]+$/i.test(s)) throw lineError(ins.line, `STOPSIGNAL: invalid signal ${JSON.stringify(s)}`);
        c.StopSignal = s;
        return `STOPSIGNAL ${s}`;
      }
      case 'SHELL':
        if (ins.json === undefined || ins.json.length === 0) throw lineError(ins.line, 'SHELL requires the arguments to be in JSON form');
        c.Shell = [...ins.json];
        return `SHELL ${JSON.stringify(c.Shell)}`;
      case 'ONBUILD':
        c.OnBuild = [...(c.OnBuild ?? []), ins.args];
        return `ONBUILD ${ins.args}`;
      case 'MAINTAINER':
        cfg.author = word(ins.args.trim());
        return `MAINTAINER ${cfg.author}`;
      default:
        throw lineError(ins.line, `${ins.cmd} is not a metadata instruction`);
    }
  } catch (e) {
    if (e instanceof TsrunError && !e.message.startsWith('Dockerfile line')) throw lineError(ins.line, `${ins.cmd}: ${e.message}`);
    throw e;
  }
}
