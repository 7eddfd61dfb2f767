/*
 * `tsctl build [-t NAME[:TAG]]… [-f Dockerfile] [--build-arg K=V]… [--target STAGE] [--no-cache]
 * [--label K=V]… [--platform linux/ARCH] [-q] CONTEXT`: docker's classic builder, run here in the
 * client (supervisor/build/, docs/build.md). The context is read from disk by tsctl, never sent.
 *
 * Output as `DOCKER_BUILDKIT=0 docker build`: `Step N/M : …`, ` ---> Using cache`, ` ---> <id>`,
 * `Successfully built <id>`, `Successfully tagged NAME`; -q prints only the image id (and a failed
 * RUN's output). Exit 1 when the build fails, 125 for bad flags.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { TsrunError } from '../../../spec/errors';
import { buildImage } from '../../build/builder';
import { parseDockerignore } from '../../build/dockerignore';
import { hostArch } from '../../build/layer';
import { parseArgs } from '../args';
import { usage, withExit, type Ctx } from '../context';
import { dockerName, fullName } from './images';

const NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

function checkTag(t: string): string {
  const full = fullName(t);
  const [repo] = dockerName(full);
  const path0 = repo.includes('.') || repo.includes(':') || repo.startsWith('localhost') ? repo.split('/').slice(1).join('/') : repo;
  if (!NAME_RE.test(path0)) throw usage(`invalid argument "${t}" for "-t, --tag" flag: invalid reference format`);
  return full;
}

function keyValue(text: string, flag: string, env: NodeJS.ProcessEnv): [string, string | undefined] {
  const eq = text.indexOf('=');
  if (eq === 0) throw usage(`invalid ${flag} ${JSON.stringify(text)}: want KEY=VALUE`);
  // docker: `--build-arg KEY` takes the value from the environment
  return eq < 0 ? [text, env[text]] : [text.slice(0, eq), text.slice(eq + 1)];
}

/** `tsctl build` */
export async function build(ctx: Ctx, argv: readonly string[]): Promise<number> {
  const a = parseArgs(
    argv,
    [
      { name: 'tag', short: 't', kind: 'list', help: 'name (and tag) the image NAME[:TAG]' },
      { name: 'file', short: 'f', kind: 'string', help: 'the Dockerfile (default CONTEXT/Dockerfile)' },
      { name: 'build-arg', kind: 'list', help: 'set a build-time variable KEY=VALUE' },
      { name: 'target', kind: 'string', help: 'build up to this stage' },
      { name: 'no-cache', kind: 'bool', help: 'do not use the cache' },
      { name: 'label', kind: 'list', help: 'set a label KEY=VALUE on the image' },
      { name: 'platform', kind: 'string', help: 'the platform (only the host\'s: linux/ARCH)' },
      { name: 'quiet', short: 'q', kind: 'bool', help: 'print only the image id' },
      { name: 'rm', kind: 'bool', help: 'remove intermediate containers (always)' },
      { name: 'network', kind: 'string', help: 'RUN\'s network: none (the only one)' },
    ],
    false,
  );
  if (a.operands.length !== 1) throw usage('"build" requires exactly 1 argument: tsctl build [OPTIONS] PATH');
  const contextArg = a.operands[0]!;
  if (contextArg === '-' || /^[a-z]+:\/\//i.test(contextArg) || contextArg.startsWith('git@')) throw usage(`build context ${contextArg}: only a local directory is supported`);
  const context = path.resolve(contextArg);
  if (!fs.statSync(context, { throwIfNoEntry: false })?.isDirectory()) throw usage(`unable to prepare context: path "${contextArg}" not found`);
  const platform = a.strings.get('platform');
  if (platform !== undefined && platform !== `linux/${hostArch()}`) throw usage(`--platform ${platform}: only the host platform linux/${hostArch()} can be built (no emulation)`);
  const network = a.strings.get('network');
  if (network !== undefined && network !== 'none' && network !== 'default') throw usage(`--network ${network}: RUN steps have no network (none)`);
  const dfArg = a.strings.get('file');
  const dfPath = dfArg === undefined ? path.join(context, 'Dockerfile') : dfArg === '-' ? '-' : path.resolve(dfArg);
  let dockerfile: string;
  try {
    dockerfile = dfPath === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(dfPath, 'utf8');
  } catch (e) {
    throw usage(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${dfPath}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : String(e)}`);
  }
  let ignoreText = '';
  try {
    ignoreText = fs.readFileSync(path.join(context, '.dockerignore'), 'utf8');
  } catch {
    // no .dockerignore
  }
  const buildArgs = new Map<string, string>();
  for (const b of a.lists.get('build-arg') ?? []) {
    const [k, v] = keyValue(b, '--build-arg', ctx.env);
    if (v !== undefined) buildArgs.set(k, v);
  }
  const labels = (a.lists.get('label') ?? []).map((l): [string, string] => {
    const [k, v] = keyValue(l, '--label', {});
    return [k, v ?? ''];
  });
  const tags = (a.lists.get('tag') ?? []).map(checkTag);
  const quiet = a.bools.has('quiet');
  // -q: RUN output is kept and shown only when the build fails
  const kept: Buffer[] = [];
  const output = new PassThrough();
  output.on('data', (b: Buffer) => (quiet ? kept.push(b) : ctx.stdout.write(b)));
  let id: string;
  try {
    id = await buildImage(ctx.client, {
      namespace: ctx.namespace,
      context,
      ignore: parseDockerignore(ignoreText),
      dockerfile,
      tags,
      buildArgs,
      ...(a.strings.has('target') ? { target: a.strings.get('target')! } : {}),
      noCache: a.bools.has('no-cache'),
      labels,
      out: (line) => {
        if (!quiet) ctx.out(line);
      },
      warn: (line) => ctx.warn(line),
      output,
    });
  } catch (e) {
    if (quiet && kept.length > 0) ctx.stderr.write(Buffer.concat(kept));
    throw withExit(e instanceof TsrunError ? e : new TsrunError('Internal', String(e), { cause: e }), 1);
  }
  if (quiet) {
    ctx.out(id);
    return 0;
  }
  ctx.out(`Successfully built ${id.slice(7, 19)}`);
  for (const t of tags) ctx.out(`Successfully tagged ${dockerName(t).join(':')}`);
  return 0;
}
