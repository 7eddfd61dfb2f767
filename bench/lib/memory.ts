/*
 * Memory of processes from /proc/<pid>/smaps_rollup: Rss (every resident page the process maps)
 * and Pss (each shared page divided by the number of processes mapping it: the fair share, so
 * N processes' Pss adds up to what they cost together).
 */
import * as fs from 'node:fs';

/** Kilobytes. */
export interface Memory {
  readonly rssKb: number;
  readonly pssKb: number;
}

/** Parse smaps_rollup text. */
export function parseSmapsRollup(text: string): Memory {
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 'NaN');
  return { rssKb: field('Rss'), pssKb: field('Pss') };
}

/** Memory of one process, or undefined when it is gone. */
export function memoryOf(pid: number): Memory | undefined {
  try {
    return parseSmapsRollup(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Sum over processes (the ones gone are skipped); `count` is how many were measured. */
export function memoryOfAll(pids: readonly number[]): Memory & { count: number } {
  let rssKb = 0;
  let pssKb = 0;
  let count = 0;
  for (const p of pids) {
    const m = memoryOf(p);
    if (m === undefined) continue;
    rssKb += m.rssKb;
    pssKb += m.pssKb;
    count++;
  }
  return { rssKb, pssKb, count };
}

/** Kilobytes as MiB with one decimal. */
export function mib(kb: number): string {
  return Number.isFinite(kb) ? (kb / 1024).toFixed(1) : '–';
}
