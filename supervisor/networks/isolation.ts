/*
 * tsrund's iptables rules for its bridges, in docker's shape (filter table):
 *
 *   FORWARD ─▶ TSRUN-FORWARD (TSRUN is the chain prefix) (jump inserted first, re-checked at every sync)
 *     TSRUN-FORWARD:  -j TSRUN-ISOLATION-1
 *                     per network B:  -o B -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
 *                                     -i B -o B -j ACCEPT            (container ↔ container)
 *                                     -i B ! -o B -j ACCEPT          (out; not for internal networks)
 *                                     -o B -j ACCEPT                 (published ports, DNAT'd in)
 *     TSRUN-ISOLATION-1: per network B:  -i B ! -o B -j TSRUN-ISOLATION-2
 *                        internal B:     -i B ! -o B -j DROP ; -o B ! -i B -j DROP
 *     TSRUN-ISOLATION-2: per network B:  -o B -j DROP   (one of our bridges to another)
 *
 * The accepts are ours because a host whose FORWARD policy is DROP (dockerd sets that) would
 * otherwise drop container traffic. `sync` rebuilds the three chains from the list of networks
 * (flush and refill), so it is idempotent and heals whatever a crash left half-written;
 * `removeAll` takes everything away when no network is left.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TsrunError } from '../../spec/errors';

const run = promisify(execFile);

/** The default chain prefix; tests give their own so that two daemons never flush each other's rules. */
export const CHAIN_PREFIX = 'TSRUN';

function chains(prefix: string): { FORWARD: string; ISO1: string; ISO2: string } {
  return { FORWARD: `${prefix}-FORWARD`, ISO1: `${prefix}-ISOLATION-1`, ISO2: `${prefix}-ISOLATION-2` };
}

/** One bridge's part in the rules. */
export interface BridgeRule {
  readonly bridge: string;
  readonly internal: boolean;
}

/** The rules of `nets` as iptables argument lists (after the chains exist and are empty). */
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

async function ipt(args: readonly string[]): Promise<void> {
  try {
    await run('iptables', ['-w', '5', '-t', 'filter', ...args]);
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr ?? '').trim() || (e as Error).message;
    throw new TsrunError('Internal', `iptables ${args.join(' ')}: ${msg}`, { cause: e });
  }
}

async function succeeds(args: readonly string[]): Promise<boolean> {
  try {
    await run('iptables', ['-w', '5', '-t', 'filter', ...args]);
    return true;
  } catch {
    return false;
  }
}

/** Make the chains hold exactly the rules of `nets`, and FORWARD jump to them first. */
export async function syncIsolation(nets: readonly BridgeRule[], prefix = CHAIN_PREFIX): Promise<void> {
  const { FORWARD, ISO1, ISO2 } = chains(prefix);
  for (const c of [FORWARD, ISO1, ISO2]) {
    if (!(await succeeds(['-n', '-L', c]))) await ipt(['-N', c]);
    await ipt(['-F', c]);
  }
  for (const rule of rulesFor(nets, prefix)) await ipt(rule);
  // First in FORWARD: drop any copy of the jump further down, then insert it at the top.
  while (await succeeds(['-D', 'FORWARD', '-j', FORWARD])) {
    // removed one
  }
  await ipt(['-I', 'FORWARD', '1', '-j', FORWARD]);
}

/** Remove the jump and the chains (no network left). */
export async function removeIsolation(prefix = CHAIN_PREFIX): Promise<void> {
  const { FORWARD, ISO1, ISO2 } = chains(prefix);
  while (await succeeds(['-D', 'FORWARD', '-j', FORWARD])) {
    // removed one
  }
  for (const c of [FORWARD, ISO1, ISO2]) {
    if (await succeeds(['-n', '-L', c])) {
      await ipt(['-F', c]);
    }
  }
  for (const c of [FORWARD, ISO1, ISO2]) {
    if (await succeeds(['-n', '-L', c])) await ipt(['-X', c]);
  }
}
