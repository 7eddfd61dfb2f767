/* Markdown for RESULTS.md: tables and number formatting. Pure. */
import * as path from 'node:path';
import { summarize } from './stats';

/** A markdown table; the first row is the header. */
export function table(rows: readonly (readonly string[])[]): string {
  const [head, ...body] = rows;
  if (!head) return '';
  const line = (r: readonly string[]): string => `| ${r.join(' | ')} |`;
  return [line(head), line(head.map((_, i) => (i === 0 ? '---' : '---:'))), ...body.map(line)].join('\n') + '\n';
}

/** Milliseconds with one decimal. */
export function ms(v: number): string {
  return Number.isFinite(v) ? v.toFixed(1) : '–';
}

/** A ratio like 1.07×. */
export function ratio(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}×` : '–';
}

/** "median / p95" of samples, or "–" when there are none. */
export function medianP95(samples: readonly number[]): string {
  if (samples.length === 0) return '–';
  const s = summarize(samples);
  return `${ms(s.median)} / ${ms(s.p95)}`;
}

/** A binary's path for RESULTS.md: relative to the checkout when inside it, so the file names no path outside the repo. */
export function shownPath(bin: string): string {
  const rel = path.relative(process.cwd(), bin);
  return rel.startsWith('..') || path.isAbsolute(rel) ? bin : rel;
}
