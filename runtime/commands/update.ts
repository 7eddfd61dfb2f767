/*
 * `tsrun update`: new limits from `--resources FILE` (`-` is stdin, what docker sends) or from
 * runc's individual flags. Zero means "leave alone" as engines send it; the cgroup driver applies.
 */
import * as fs from 'node:fs';
import { parseResources, type LinuxResources } from '../../spec';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import { updateContainer } from '../container/lifecycle';
import type { CommandContext } from './context';

/** runc's individual update flags (values as given on the command line). */
export interface UpdateFlags {
  readonly blkioWeight?: string | undefined;
  readonly cpuPeriod?: string | undefined;
  readonly cpuQuota?: string | undefined;
  readonly cpuShare?: string | undefined;
  readonly cpuRtPeriod?: string | undefined;
  readonly cpuRtRuntime?: string | undefined;
  readonly cpusetCpus?: string | undefined;
  readonly cpusetMems?: string | undefined;
  readonly memory?: string | undefined;
  readonly memoryReservation?: string | undefined;
  readonly memorySwap?: string | undefined;
  readonly kernelMemory?: string | undefined;
  readonly kernelMemoryTcp?: string | undefined;
  readonly pidsLimit?: string | undefined;
}

/** A size like docker's: bytes, or with k/m/g/t (binary) suffix; -1 means unlimited. */
export function parseSize(flag: string, v: string): number {
  const m = /^(-1|\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(v.trim());
  if (!m) throw new TsrunError('InvalidArgument', `invalid --${flag} ${JSON.stringify(v)}: want bytes with an optional k, m, g or t suffix`);
  if (m[1] === '-1') return -1;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(parseFloat(m[1]!) * mult);
}

function int(flag: string, v: string): number {
  if (!/^-?\d+$/.test(v.trim())) throw new TsrunError('InvalidArgument', `invalid --${flag} ${JSON.stringify(v)}: want an integer`);
  return Number(v);
}

/** Turn runc's update flags into a LinuxResources document (only the flags given). */
export function resourcesFromFlags(f: UpdateFlags): LinuxResources {
  const memory: Record<string, number> = {};
  const cpu: Record<string, number | string> = {};
  if (f.memory !== undefined) memory['limit'] = parseSize('memory', f.memory);
  if (f.memoryReservation !== undefined) memory['reservation'] = parseSize('memory-reservation', f.memoryReservation);
  if (f.memorySwap !== undefined) memory['swap'] = parseSize('memory-swap', f.memorySwap);
  if (f.kernelMemory !== undefined) memory['kernel'] = parseSize('kernel-memory', f.kernelMemory);
  if (f.kernelMemoryTcp !== undefined) memory['kernelTCP'] = parseSize('kernel-memory-tcp', f.kernelMemoryTcp);
  if (f.cpuShare !== undefined) cpu['shares'] = int('cpu-share', f.cpuShare);
  if (f.cpuQuota !== undefined) cpu['quota'] = int('cpu-quota', f.cpuQuota);
  if (f.cpuPeriod !== undefined) cpu['period'] = int('cpu-period', f.cpuPeriod);
  if (f.cpuRtRuntime !== undefined) cpu['realtimeRuntime'] = int('cpu-rt-runtime', f.cpuRtRuntime);
  if (f.cpuRtPeriod !== undefined) cpu['realtimePeriod'] = int('cpu-rt-period', f.cpuRtPeriod);
  if (f.cpusetCpus !== undefined) cpu['cpus'] = f.cpusetCpus;
  if (f.cpusetMems !== undefined) cpu['mems'] = f.cpusetMems;
  const doc: Record<string, unknown> = {};
  if (Object.keys(memory).length > 0) doc['memory'] = memory;
  if (Object.keys(cpu).length > 0) doc['cpu'] = cpu;
  if (f.pidsLimit !== undefined) doc['pids'] = { limit: int('pids-limit', f.pidsLimit) };
  if (f.blkioWeight !== undefined) doc['blockIO'] = { weight: int('blkio-weight', f.blkioWeight) };
  return parseResources(JSON.stringify(doc), 'update flags');
}

/** Run `update`. */
export function update(ctx: CommandContext, id: string, resourcesFile: string | undefined, flags: UpdateFlags, stdin: () => string): number {
  let resources: LinuxResources;
  if (resourcesFile !== undefined) {
    let text: string;
    try {
      text = resourcesFile === '-' ? stdin() : fs.readFileSync(resourcesFile, 'utf8');
    } catch (err) {
      throw wrapSystemError(`read resources ${resourcesFile === '-' ? 'from stdin' : resourcesFile}`, err);
    }
    resources = parseResources(text, resourcesFile === '-' ? 'resources on stdin' : resourcesFile);
  } else {
    resources = resourcesFromFlags(flags);
  }
  updateContainer(ctx.root, id, resources);
  return 0;
}
