/*
 * tsrund's iptables rules for its bridges, in docker's shape:
 *
 *   filter FORWARD ─▶ TSRUN-FORWARD (TSRUN is the chain prefix) (jump first, re-checked at every sync)
 *     TSRUN-FORWARD:  -j TSRUN-ISOLATION-1
 *                     per network B:  -o B -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
 *                                     -i B -o B -j ACCEPT            (container ↔ container)
 *                                     -i B ! -o B -j ACCEPT          (out; not for internal networks)
 *                                     -o B -j ACCEPT                 (published ports, DNAT'd in)
 *     TSRUN-ISOLATION-1: per network B:  -i B ! -o B -j TSRUN-ISOLATION-2
 *                        internal B:     -i B ! -o B -j DROP ; -o B ! -i B -j DROP
 *     TSRUN-ISOLATION-2: per network B:  -o B -j DROP   (one of our bridges to another)
 *   nat POSTROUTING ─▶ TSRUN-POSTROUTING
 *     per network B with subnet S, not internal:  -s S ! -o B -j MASQUERADE
 *
 * The accepts are ours because a host whose FORWARD policy is DROP (dockerd sets that) would
 * otherwise drop container traffic. Masquerading is one rule per network, as docker's, instead of
 * the bridge plugin's ipMasq, which makes a chain per container: five iptables process starts on
 * every ADD and again on every DEL, each taking the xtables lock. `sync` rebuilds the chains from
 * the list of networks in one iptables-restore (a declared chain is flushed and refilled, so it is
 * idempotent and heals whatever a crash left half-written); `removeAll` takes everything away when
 * no network is left.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TsrunError } from '../../spec/errors';

const run = promisify(execFile);

/** The default chain prefix; tests give their own so that two daemons never flush each other's rules. */
export const CHAIN_PREFIX = 'TSRUN';

function chains(prefix: string): { FORWARD: string; ISO1: string; ISO2: string; POST: string } {
  return { FORWARD: `${prefix}-FORWARD`, ISO1: `${prefix}-ISOLATION-1`, ISO2: `${prefix}-ISOLATION-2`, POST: `${prefix}-POSTROUTING` };
}

/** One bridge's part in the rules. */
export interface BridgeRule {
  readonly bridge: string;
  readonly internal: boolean;
  /** IPv4 CIDR, masqueraded on the way out unless internal */
  readonly subnet: string;
}

/** The filter rules of `nets` as iptables argument lists (after the chains exist and are empty). */
export function rulesFor(nets: readonly BridgeRule[], prefix = CHAIN_PREFIX): string[][] {
  const { FORWARD, ISO1, ISO2 } = chains(prefix);
  const r: string[][] = [['-A', FORWARD, '-j', ISO1]];
  for (const n of nets) {
    r.push(['-A', FORWARD, '-o', n.bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT']);
    r.push(['-A', FORWARD, '-i', n.bridge, '-o', n.bridge, '-j', 'ACCEPT']);
    if (!n.internal) {
      r.push(['-A', FORWARD, '-i', n.bridge, '!', '-o', n.bridge, '-j', 'ACCEPT']);
      r.push(['-A', FORWARD, '-o', n.bridge, '-j', 'ACCEPT']);
    }
    if (n.internal) {
      r.push(['-A', ISO1, '-i', n.bridge, '!', '-o', n.bridge, '-j', 'DROP']);
      r.push(['-A', ISO1, '-o', n.bridge, '!', '-i', n.bridge, '-j', 'DROP']);
    } else {
      r.push(['-A', ISO1, '-i', n.bridge, '!', '-o', n.bridge, '-j', ISO2]);
    }
    r.push(['-A', ISO2, '-o', n.bridge, '-j', 'DROP']);
  }
  return r;
}

/** The nat rules of `nets` (masquerading of each network that is not internal). */
export function natRulesFor(nets: readonly BridgeRule[], prefix = CHAIN_PREFIX): string[][] {
  const { POST } = chains(prefix);
  return nets.filter((n) => !n.internal).map((n) => ['-A', POST, '-s', n.subnet, '!', '-o', n.bridge, '-j', 'MASQUERADE']);
}

/** iptables-restore input that declares (creates or flushes) the chains and fills them. */
export function restoreText(nets: readonly BridgeRule[], prefix = CHAIN_PREFIX): string {
  const { FORWARD, ISO1, ISO2, POST } = chains(prefix);
  const line = (r: readonly string[]) => r.join(' ');
  return [
    '*filter',
    ...[FORWARD, ISO1, ISO2].map((c) => `:${c} - [0:0]`),
    ...rulesFor(nets, prefix).map(line),
    'COMMIT',
    '*nat',
    `:${POST} - [0:0]`,
    ...natRulesFor(nets, prefix).map(line),
    'COMMIT',
    '',
  ].join('\n');
}

async function ipt(table: string, args: readonly string[]): Promise<void> {
  try {
    await run('iptables', ['-w', '5', '-t', table, ...args]);
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr ?? '').trim() || (e as Error).message;
    throw new TsrunError('Internal', `iptables -t ${table} ${args.join(' ')}: ${msg}`, { cause: e });
  }
}

async function succeeds(table: string, args: readonly string[]): Promise<boolean> {
  try {
    await run('iptables', ['-w', '5', '-t', table, ...args]);
    return true;
  } catch {
    return false;
  }
}

function restore(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('iptables-restore', ['-w', '5', '--noflush'], (e, _out, stderr) => {
      if (e === null) resolve();
      else reject(new TsrunError('Internal', `iptables-restore of tsrund's chains: ${stderr.trim() || e.message}`, { cause: e }));
    });
    child.stdin?.end(text);
  });
}

/** Make `chain` the first rule of `builtin` (exactly once). */
async function jumpFirst(table: string, builtin: string, chain: string): Promise<void> {
  const { stdout } = await run('iptables', ['-w', '5', '-t', table, '-S', builtin]);
  const rules = stdout.split('\n').filter((l) => l.startsWith('-A '));
  const jump = `-A ${builtin} -j ${chain}`;
  if (rules[0] === jump && !rules.slice(1).includes(jump)) return;
  while (await succeeds(table, ['-D', builtin, '-j', chain])) {
    // removed one
  }
  await ipt(table, ['-I', builtin, '1', '-j', chain]);
}

/** Make the chains hold exactly the rules of `nets`, and FORWARD / POSTROUTING jump to them first. */
export async function syncIsolation(nets: readonly BridgeRule[], prefix = CHAIN_PREFIX): Promise<void> {
  const { FORWARD, POST } = chains(prefix);
  await restore(restoreText(nets, prefix));
  await jumpFirst('filter', 'FORWARD', FORWARD);
  await jumpFirst('nat', 'POSTROUTING', POST);
}

/** Remove the jumps and the chains (no network left). */
export async function removeIsolation(prefix = CHAIN_PREFIX): Promise<void> {
  const { FORWARD, ISO1, ISO2, POST } = chains(prefix);
  for (const [table, builtin, chain] of [['filter', 'FORWARD', FORWARD], ['nat', 'POSTROUTING', POST]] as const) {
    while (await succeeds(table, ['-D', builtin, '-j', chain])) {
      // removed one
    }
  }
  for (const [table, c] of [['filter', FORWARD], ['filter', ISO1], ['filter', ISO2], ['nat', POST]] as const) {
    if (await succeeds(table, ['-n', '-L', c])) await ipt(table, ['-F', c]);
  }
  for (const [table, c] of [['filter', FORWARD], ['filter', ISO1], ['filter', ISO2], ['nat', POST]] as const) {
    if (await succeeds(table, ['-n', '-L', c])) await ipt(table, ['-X', c]);
  }
}
