/*
 * `tsctl pull [--platform os/arch] NAME[:TAG|@DIGEST]` and `tsctl push NAME[:TAG]`: the work runs
 * in tsrund (Transfer service); tsctl reads the registry's credentials from the docker
 * config.json ($DOCKER_CONFIG/config.json, else ~/.docker/config.json) and sends them with the
 * request, as docker sends X-Registry-Auth, then prints docker's progress lines.
 *
 * On a terminal, docker's TTY form: a line per layer redrawn in place, with a progress bar while
 * it downloads or uploads (../progress.ts). Elsewhere docker's non-TTY form: one line per layer
 * state change ("Pulling fs layer", "Download complete", "Pull complete", "Already exists", …),
 * without the per-chunk "Downloading"/"Pushing" reports.
 */
import { parseArgs } from '../args';
import { usage, type Ctx } from '../context';
import { defaultDockerConfigPath, familiarReference, loadCredentials, parseReference } from '../../registry/index';
import { fullName } from './images';
import { progressBar, TtyLines } from '../progress';

interface WireProgress {
  id: string;
  state: string;
  kind: string;
  image: string;
  digest: string;
  newer: boolean;
  size: number | { toNumber(): number };
  current: number | { toNumber(): number };
  total: number | { toNumber(): number };
}

const num = (v: number | { toNumber(): number }): number => (typeof v === 'number' ? v : v.toNumber());

function authFor(ctx: Ctx, domain: string): { username: string; password: string } | undefined {
  const c = loadCredentials(domain, defaultDockerConfigPath(ctx.env));
  return c === undefined ? undefined : { username: c.username, password: c.password };
}

/** Prints each layer's state changes in docker's words: redrawn in place on a terminal, else once each. */
function layerPrinter(ctx: Ctx, first: string): (p: WireProgress) => void {
  if (ctx.stdout.isTTY) return ttyLayerPrinter(ctx, first);
  const last = new Map<string, string>();
  return (p) => {
    // Waiting is announced for every layer before the registry client knows which it holds
    if (p.id === '' || p.state === 'Waiting') return;
    if (p.state === 'Downloading' || p.state === 'Pushing') {
      if (!last.has(p.id)) {
        last.set(p.id, first);
        ctx.out(`${p.id}: ${first}`);
      }
      return;
    }
    if (!last.has(p.id) && p.state !== 'Already exists' && p.state !== first) ctx.out(`${p.id}: ${first}`);
    if (last.get(p.id) === p.state) return;
    last.set(p.id, p.state);
    ctx.out(`${p.id}: ${p.state}`);
  };
}

/** docker's TTY form: each layer's line shows its latest state, with a bar while bytes move. */
function ttyLayerPrinter(ctx: Ctx, first: string): (p: WireProgress) => void {
  const lines = new TtyLines((text) => ctx.stdout.write(text));
  const seen = new Set<string>();
  return (p) => {
    if (p.id === '') return;
    // Waiting comes for every layer first: the layer's line starts as docker's does
    const state = p.state === 'Waiting' && !seen.has(p.id) ? first : p.state;
    seen.add(p.id);
    const moving = state === 'Downloading' || state === 'Pushing';
    lines.set(p.id, moving ? `${p.id}: ${state} ${progressBar(num(p.current), num(p.total))}` : `${p.id}: ${state}`);
  };
}

/** `tsctl pull` */
export async function pull(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [{ name: 'platform', kind: 'string', help: 'pick this os/arch[/variant] from a multi-platform image' }], false);
  if (a.operands.length !== 1) throw usage('"pull" requires exactly 1 argument: NAME[:TAG|@DIGEST]');
  const ref = parseReference(a.operands[0]!);
  ctx.out(`${ref.digest ?? ref.tag ?? 'latest'}: Pulling from ${ref.path}`);
  const print = layerPrinter(ctx, 'Pulling fs layer');
  let done: WireProgress | undefined;
  const req = { reference: a.operands[0]!, platform: a.strings.get('platform') ?? '', auth: authFor(ctx, ref.domain) };
  for await (const p of ctx.client.stream<WireProgress>('Transfer', 'Pull', req).messages) {
    if (p.state === 'done') done = p;
    else print(p);
  }
  if (done === undefined) throw new Error(`pull ${a.operands[0]!}: tsrund ended the stream without a result`);
  const familiar = familiarReference(parseReference(done.image));
  ctx.out(`Digest: ${done.digest}`);
  ctx.out(done.newer ? `Status: Downloaded newer image for ${familiar}` : `Status: Image is up to date for ${familiar}`);
  ctx.out(done.image);
  return 0;
}

/** `tsctl push` */
export async function push(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, [], false);
  if (a.operands.length !== 1) throw usage('"push" requires exactly 1 argument: NAME[:TAG]');
  const name = fullName(a.operands[0]!);
  const ref = parseReference(name);
  ctx.out(`The push refers to repository [${ref.domain === 'docker.io' ? `docker.io/${ref.path}` : `${ref.domain}/${ref.path}`}]`);
  const print = layerPrinter(ctx, 'Preparing');
  let done: WireProgress | undefined;
  for await (const p of ctx.client.stream<WireProgress>('Transfer', 'Push', { name, reference: name, auth: authFor(ctx, ref.domain) }).messages) {
    if (p.state === 'done') done = p;
    else if (p.kind !== 'config') print(p);
  }
  if (done === undefined) throw new Error(`push ${name}: tsrund ended the stream without a result`);
  ctx.out(`${ref.digest ?? ref.tag ?? 'latest'}: digest: ${done.digest} size: ${num(done.size)}`);
  return 0;
}
