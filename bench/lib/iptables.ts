/*
 * Targeted iptables cleanup for a section whose daemons make rules. The host's filter and nat
 * tables are shared with everything else on the machine (other test runs, other daemons, CNI
 * plugins of other users), so a section removes the rules and chains it can name as its own (by
 * its devices and chain prefix) instead of restoring a snapshot taken at its start, which would
 * also wipe whatever anyone else added meanwhile.
 */
import { spawnSync } from 'node:child_process';

export type Table = 'filter' | 'nat';

/** One rule as `iptables -S` prints it. */
export interface Rule {
  readonly table: Table;
  readonly chain: string;
  /** the arguments after `-A CHAIN` */
  readonly args: readonly string[];
  readonly text: string;
}

/** A table's user chains and rules. */
export interface TableListing {
  readonly chains: readonly string[];
  readonly rules: readonly Rule[];
}

/** Split an `iptables -S` line into arguments (double quotes group words, as in a comment). */
export function splitRule(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!));
}

function iptables(table: Table, args: readonly string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('iptables', ['-w', '5', '-t', table, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '').trim() || (r.error?.message ?? '') };
}

/** The user chains and the rules of `table` now. */
export function listTable(table: Table): TableListing {
  const r = iptables(table, ['-S']);
  if (!r.ok) throw new Error(`iptables -t ${table} -S: ${r.err}`);
  const chains: string[] = [];
  const rules: Rule[] = [];
  for (const line of r.out.split('\n')) {
    const a = splitRule(line);
    if (a[0] === '-N' && a[1] !== undefined) chains.push(a[1]);
    if (a[0] === '-A' && a[1] !== undefined) rules.push({ table, chain: a[1], args: a.slice(2), text: line });
  }
  return { chains, rules };
}

/** The devices a rule matches with `-i` / `-o` (negated or not). */
export function devicesOf(r: Rule): string[] {
  return r.args.flatMap((a, i) => ((a === '-i' || a === '-o' || a === '--in-interface' || a === '--out-interface') && r.args[i + 1] !== undefined ? [r.args[i + 1]!] : []));
}

/** The chain a rule jumps or goes to, if any. */
export function targetOf(r: Rule): string | undefined {
  const i = r.args.findIndex((a) => a === '-j' || a === '-g' || a === '--jump' || a === '--goto');
  return i >= 0 ? r.args[i + 1] : undefined;
}

/** Delete each rule (`iptables -D CHAIN` with its own arguments); returns what would not go, with why. */
export function deleteRules(rules: readonly Rule[]): string[] {
  const failed: string[] = [];
  for (const r of rules) {
    const d = iptables(r.table, ['-D', r.chain, ...r.args]);
    if (!d.ok) failed.push(`${r.table}: ${r.text}: ${d.err}`);
  }
  return failed;
}

/** Remove `chains` of `table`: every rule that jumps to one of them, then each chain's rules, then the chains. */
export function removeChains(table: Table, chains: readonly string[]): string[] {
  if (chains.length === 0) return [];
  const set = new Set(chains);
  const failed = deleteRules(listTable(table).rules.filter((r) => !set.has(r.chain) && set.has(targetOf(r) ?? '')));
  for (const c of chains) {
    const f = iptables(table, ['-F', c]);
    if (!f.ok) failed.push(`${table}: flush ${c}: ${f.err}`);
  }
  for (const c of chains) {
    const x = iptables(table, ['-X', c]);
    if (!x.ok) failed.push(`${table}: delete chain ${c}: ${x.err}`);
  }
  return failed;
}
