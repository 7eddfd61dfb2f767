/*
 * `tsctl build`: docker's classic builder as a containerd client (docs/build.md).
 *
 *   Dockerfile ─ parse ─ stages (FROM … AS name), global ARGs before the first FROM
 *   each step ─ cache key = sha256(parent step id, instruction as substituted, content digests of
 *               the files COPY/ADD read, build args a RUN sees)
 *             ─ hit: a config blob labelled tsctl.build.cache=<key> whose snapshot chain exists
 *             ─ miss: metadata → new config; RUN → container on an active snapshot; COPY/ADD →
 *               files into the mounted snapshot; then Diff.Diff → layer, Commit → chain snapshot
 *             ─ the step's config blob (its id, docker's intermediate image) is labelled with the
 *               key, its layer, gc.ref.content.parent (the previous step) and gc.ref.snapshot
 *   end       ─ manifest, image records for each -t (else untagged@<id))
 *
 * The whole build runs under one lease: a failure leaves nothing (no container, snapshot, blob or
 * tag); after success the image holds its steps (config → parent → …), so `rmi` lets the collector
 * take the cache with it.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { TsrunError } from '../../spec/errors';
import type { TsrundClient } from '../client';
import { dockerName, fullName } from '../tsctl/commands/images';
import { SNAPSHOTTER, withMountedSnapshot, type SnapshotMount } from '../tsctl/image-run';
import { resolveSources, sourceDigest, type SourceRoot } from './context';
import { copyInto, planSources } from './copy-step';
import { parseDockerfile, type Instruction } from './dockerfile';
import type { IgnoreRules } from './dockerignore';
import { appendStep, cloneState, commitChain, diffLayer, isRpc, nameImage, readImageState, readJson, scratchState, storeImage, topChain, unpackState, untaggedName, withLease, writeBlob, CONFIG_TYPE, type Desc, type ImageState, type OciConfig } from './layer';
import { applyMetadata, envVars, METADATA_INSTRUCTIONS, shellOf, type StageFlags } from './metadata';
import { runInContainer } from './run-step';
import { processWord, processWords, splitRaw } from './substitute';

/** What a build needs. */
export interface BuildOptions {
  readonly namespace: string;
  readonly context: string;
  readonly ignore: IgnoreRules;
  readonly dockerfile: string;
  readonly tags: readonly string[];
  readonly buildArgs: ReadonlyMap<string, string>;
  readonly target?: string;
  readonly noCache: boolean;
  readonly labels: ReadonlyArray<[string, string]>;
  /** progress lines (nothing with -q) */
  readonly out: (line: string) => void;
  readonly warn: (line: string) => void;
  /** where RUN output goes */
  readonly output: Writable;
}

interface Step {
  state: ImageState;
  /** config digest ("" for scratch) */
  id: string;
}

interface Stage {
  from: Instruction;
  name: string | undefined;
  body: Instruction[];
}

const CACHE_LABEL = 'tsctl.build.cache';
const LAYER_LABEL = 'tsctl.build.layer';
const PARENT_REF = 'containerd.io/gc.ref.content.parent';
const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

function splitStages(all: readonly Instruction[]): { globals: Instruction[]; stages: Stage[] } {
  const globals: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of all) {
    if (ins.cmd === 'FROM') {
      const words = ins.args.trim().split(/\s+/);
      let name: string | undefined;
      if (words.length === 3 && words[1]!.toUpperCase() === 'AS') name = words[2]!.toLowerCase();
      else if (words.length !== 1) throw new TsrunError('InvalidArgument', `Dockerfile line ${ins.line}: FROM requires either one or three arguments (FROM IMAGE [AS NAME])`);
      stages.push({ from: ins, name, body: [] });
    } else if (stages.length === 0) {
      if (ins.cmd !== 'ARG') throw new TsrunError('InvalidArgument', `Dockerfile line ${ins.line}: ${ins.cmd} before the first FROM (only ARG may come first)`);
      globals.push(ins);
    } else stages[stages.length - 1]!.body.push(ins);
  }
  if (stages.length === 0) throw new TsrunError('InvalidArgument', 'the Dockerfile has no FROM instruction');
  return { globals, stages };
}

/** ARG's `name[=default]` words. */
function argDecls(ins: Instruction, vars: ReadonlyMap<string, string>, escape: string): Array<[string, string | undefined]> {
  return splitRaw(ins.args, escape).map((w) => {
    const eq = w.indexOf('=');
    if (eq === 0) throw new TsrunError('InvalidArgument', `ARG names can not be blank`);
    return eq < 0 ? [w, undefined] : [w.slice(0, eq), processWord(w.slice(eq + 1), vars, escape)];
  });
}

/** Build; resolves to the image id. */
export async function buildImage(client: TsrundClient, o: BuildOptions): Promise<string> {
  const df = parseDockerfile(o.dockerfile);
  const esc = df.escape;
  const { globals, stages } = splitStages(df.instructions);
  let targetIdx = stages.length - 1;
  if (o.target !== undefined) {
    targetIdx = stages.findIndex((s) => s.name === o.target!.toLowerCase());
    if (targetIdx < 0) throw new TsrunError('InvalidArgument', `failed to reach build target ${o.target} in Dockerfile`);
  }
  const extraLabels: Instruction[] =
    o.labels.length > 0
      ? [{ cmd: 'LABEL', args: o.labels.map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' '), json: undefined, flags: new Map(), original: `LABEL ${o.labels.map(([k, v]) => `${k}=${v}`).join(' ')}`, line: 0 }]
      : [];
  const used = stages.slice(0, targetIdx + 1);
  const total = globals.length + used.reduce((n, s) => n + 1 + s.body.length, 0) + extraLabels.length;
  let stepNo = 0;
  const consumed = new Set<string>();
  const globalArgs = new Map<string, string>();
  const header = (ins: Instruction): void => o.out(`Step ${++stepNo}/${total} : ${ins.original}`);
  const fail = (ins: Instruction, e: unknown): never => {
    const msg = e instanceof Error ? e.message : String(e);
    if (/^Dockerfile line \d+/.test(msg)) throw e;
    const where = ins.line > 0 ? `Dockerfile line ${ins.line}: ` : '';
    throw new TsrunError(e instanceof TsrunError ? e.code : 'Internal', `${where}${ins.original.slice(0, 120)}: ${msg}`, { cause: e });
  };
  for (const g of globals) {
    header(g);
    try {
      for (const [k, d] of argDecls(g, globalArgs, esc)) {
        const v = o.buildArgs.get(k) ?? d;
        if (o.buildArgs.has(k)) consumed.add(k);
        if (v !== undefined) globalArgs.set(k, v);
      }
    } catch (e) {
      fail(g, e);
    }
  }

  const id = await withLease(client, async (lc) => {
    const done: Step[] = [];
    const byName = new Map<string, number>();

    const cached = async (key: string, parent: Step): Promise<Step | undefined> => {
      if (o.noCache) return undefined;
      const found: Array<{ digest: string; labels: Record<string, string> }> = [];
      for await (const m of lc.stream<{ info: Array<{ digest: string; labels: Record<string, string> }> }>('Content', 'List', { filters: [`labels.${CACHE_LABEL}==${key}`] }).messages) found.push(...m.info);
      for (const f of found.reverse()) {
        const config = await readJson<OciConfig>(lc, f.digest, 'cached step config').catch(() => undefined);
        if (config === undefined) continue;
        const layers = [...parent.state.layers];
        const l = f.labels[LAYER_LABEL];
        if (l !== undefined) {
          const [mediaType = '', digest = '', size = '0'] = l.split(' ');
          layers.push({ mediaType, digest, size: Number(size) });
        }
        const state = { config, layers };
        if (layers.length !== config.rootfs.diff_ids.length) continue;
        const top = topChain(state);
        if (top !== '' && !(await lc.call('Snapshots', 'Stat', { snapshotter: SNAPSHOTTER, key: top }).then(() => true, () => false))) continue;
        return { state, id: f.digest };
      }
      return undefined;
    };

    const record = async (key: string, parent: Step, state: ImageState, layer: Desc | undefined): Promise<Step> => {
      const top = topChain(state);
      const labels: Record<string, string> = { [CACHE_LABEL]: key };
      if (parent.id !== '') labels[PARENT_REF] = parent.id;
      if (top !== '') labels[`containerd.io/gc.ref.snapshot.${SNAPSHOTTER}`] = top;
      state.layers.forEach((l, i) => (labels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
      if (layer !== undefined) labels[LAYER_LABEL] = `${layer.mediaType} ${layer.digest} ${layer.size}`;
      const d = await writeBlob(lc, Buffer.from(JSON.stringify(state.config)), CONFIG_TYPE, labels);
      return { state, id: d.digest };
    };

    /** a step's active snapshot on the parent's chain, `fn` on its mounts, then its layer committed */
    const withSnapshot = async (parent: Step, state: ImageState, entry: { created_by: string }, fn: (mounts: SnapshotMount[]) => Promise<void>): Promise<Desc | undefined> => {
      const key = `build-${randomBytes(8).toString('hex')}`;
      const { mounts } = await lc.call<{ mounts: SnapshotMount[] }>('Snapshots', 'Prepare', { snapshotter: SNAPSHOTTER, key, parent: topChain(parent.state), labels: {} });
      try {
        await fn(mounts);
        let layer;
        if (mounts[0]?.type === 'overlay' || parent.state.layers.length === 0) layer = await diffLayer(lc, mounts, []);
        else {
          const view = `${key}-view`;
          const { mounts: lower } = await lc.call<{ mounts: SnapshotMount[] }>('Snapshots', 'View', { snapshotter: SNAPSHOTTER, key: view, parent: topChain(parent.state), labels: {} });
          try {
            layer = await diffLayer(lc, mounts, lower);
          } finally {
            await lc.call('Snapshots', 'Remove', { snapshotter: SNAPSHOTTER, key: view }).catch(() => undefined);
          }
        }
        appendStep(state, layer, entry);
        if (layer === undefined) await lc.call('Snapshots', 'Remove', { snapshotter: SNAPSHOTTER, key });
        else await commitChain(lc, state, key);
        return layer?.layer;
      } catch (e) {
        await lc.call('Snapshots', 'Remove', { snapshotter: SNAPSHOTTER, key }).catch(() => undefined);
        throw e;
      }
    };

    const fromImage = async (name: string): Promise<Step> => {
      if (name === 'scratch') return { state: scratchState(), id: '' };
      const stageIdx = byName.get(name.toLowerCase());
      if (stageIdx !== undefined) return { state: cloneState(done[stageIdx]!.state), id: done[stageIdx]!.id };
      const full = fullName(name);
      let r;
      try {
        r = await readImageState(lc, full);
      } catch (e) {
        if (isRpc(e, 'NotFound')) throw new TsrunError('NotFound', `Unable to find image '${dockerName(full).join(':')}' locally (tsctl build does not pull: tsctl pull it first)`);
        throw e;
      }
      await unpackState(lc, r.state, full);
      return { state: r.state, id: r.id };
    };

    /** run `fn` with the rootfs of a stage or image (COPY --from), read-only view */
    const withStageRoot = async <T>(from: string, fn: (dir: string, id: string) => Promise<T>): Promise<T> => {
      const idx = /^\d+$/.test(from) ? Number(from) : byName.get(from.toLowerCase());
      const src = idx !== undefined ? done[idx] : await fromImage(from);
      if (src === undefined) throw new TsrunError('InvalidArgument', `COPY --from=${from}: no such stage before this one (stages are named with FROM … AS NAME)`);
      const top = topChain(src.state);
      if (top === '') throw new TsrunError('NotFound', `COPY --from=${from}: the stage has no files`);
      const key = `build-view-${randomBytes(8).toString('hex')}`;
      const { mounts } = await lc.call<{ mounts: SnapshotMount[] }>('Snapshots', 'View', { snapshotter: SNAPSHOTTER, key, parent: top, labels: {} });
      try {
        return await withMountedSnapshot(mounts, (dir) => fn(dir, src.id));
      } finally {
        await lc.call('Snapshots', 'Remove', { snapshotter: SNAPSHOTTER, key }).catch(() => undefined);
      }
    };

    for (const [si, stage] of used.entries()) {
      const fromIns = stage.from;
      header(fromIns);
      let cur: Step;
      const stageArgs = new Map<string, string>();
      const flags: StageFlags = { cmdSet: false };
      try {
        const words = processWords(fromIns.args, globalArgs, esc);
        cur = await fromImage(words[0]!);
        if (fromIns.flags.has('platform')) {
          const p = processWord(fromIns.flags.get('platform')!, globalArgs, esc);
          if (p !== `${cur.state.config.os}/${cur.state.config.architecture}` && cur.id !== '') throw new TsrunError('InvalidArgument', `platform ${p} requested but the image is ${cur.state.config.os}/${cur.state.config.architecture}`);
        }
      } catch (e) {
        return fail(fromIns, e);
      }
      cur = { state: cloneState(cur.state), id: cur.id };
      o.out(cur.id === '' ? ' ---> ' : ` ---> ${short(cur.id)}`);
      // ONBUILD triggers of the base run first, then are cleared (docker's rule)
      const triggers = cur.state.config.config.OnBuild ?? [];
      const body = [...triggers.flatMap((t) => parseDockerfile(t).instructions.map((i) => ({ ...i, line: fromIns.line }))), ...stage.body, ...(si === targetIdx ? extraLabels : [])];
      if (triggers.length > 0) o.out(`# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}`);
      cur.state.config.config.OnBuild = null;
      for (const [bi, ins] of body.entries()) {
        if (bi >= triggers.length) header(ins);
        const vars = new Map([...stageArgs, ...envVars(cur.state.config.config.Env)]);
        try {
          cur = await step(ins, cur, vars, stageArgs, flags);
        } catch (e) {
          return fail(ins, e);
        }
        o.out(` ---> ${short(cur.id)}`);
      }
      done.push(cur);
      if (stage.name !== undefined) byName.set(stage.name, si);
    }

    async function step(ins: Instruction, parent: Step, vars: Map<string, string>, stageArgs: Map<string, string>, flags: StageFlags): Promise<Step> {
      const state = cloneState(parent.state);
      const nop = (text: string): string => `/bin/sh -c #(nop)  ${text}`;
      const keyOf = (...parts: string[]): string => createHash('sha256').update(JSON.stringify([parent.id, ...parts])).digest('hex');
      const hit = async (key: string): Promise<Step | undefined> => {
        const c = await cached(key, parent);
        if (c !== undefined) o.out(' ---> Using cache');
        return c;
      };
      if (ins.cmd === 'ARG') {
        const decl = argDecls(ins, vars, esc);
        for (const [k, d] of decl) {
          const v = o.buildArgs.get(k) ?? d ?? globalArgs.get(k);
          if (o.buildArgs.has(k)) consumed.add(k);
          if (v !== undefined) stageArgs.set(k, v);
        }
        const text = `ARG ${decl.map(([k, d]) => (d === undefined ? k : `${k}=${d}`)).join(' ')}`;
        const key = keyOf('ARG', text);
        const c = await hit(key);
        if (c !== undefined) return c;
        appendStep(state, undefined, { created_by: nop(text) });
        return record(key, parent, state, undefined);
      }
      if (METADATA_INSTRUCTIONS.has(ins.cmd)) {
        const text = applyMetadata(state.config, ins, vars, esc, flags);
        const key = keyOf('META', text, JSON.stringify(state.config.config));
        const c = await hit(key);
        if (c !== undefined) return c;
        appendStep(state, undefined, { created_by: nop(text) });
        return record(key, parent, state, undefined);
      }
      if (ins.cmd === 'RUN') {
        if (ins.flags.size > 0) throw new TsrunError('InvalidArgument', `RUN --${[...ins.flags.keys()][0]!} is not supported by the classic builder`);
        const cfg = state.config.config;
        const args = ins.json !== undefined ? [...ins.json] : [...shellOf(state.config), ins.args];
        const env = [...(cfg.Env ?? [])];
        const argEnv = [...stageArgs].filter(([k]) => !env.some((e) => e.startsWith(`${k}=`)));
        env.push(...argEnv.map(([k, v]) => `${k}=${v}`));
        const createdBy = `${argEnv.length > 0 ? `|${argEnv.length} ${argEnv.map(([k, v]) => `${k}=${v}`).join(' ')} ` : ''}${args.join(' ')}`;
        const key = keyOf('RUN', JSON.stringify(args), JSON.stringify(argEnv), cfg.User ?? '', cfg.WorkingDir ?? '');
        const c = await hit(key);
        if (c !== undefined) return c;
        const layer = await withSnapshot(parent, state, { created_by: createdBy }, async (mounts) => {
          let ctr = '';
          const status = await runInContainer(lc, {
            namespace: o.namespace,
            mounts,
            args,
            env,
            user: cfg.User,
            workdir: cfg.WorkingDir,
            output: o.output,
            started: (cid) => {
              ctr = cid;
              o.out(` ---> Running in ${short(cid)}`);
            },
          });
          if (ctr !== '') o.out(`Removing intermediate container ${short(ctr)}`);
          if (status !== 0) throw new TsrunError('Internal', `The command '${args.join(' ')}' returned a non-zero code: ${status}`);
        });
        return record(key, parent, state, layer);
      }
      if (ins.cmd === 'COPY' || ins.cmd === 'ADD') return copyStep(ins, parent, state, vars, keyOf, hit);
      if (ins.cmd === 'HEALTHCHECK') throw new TsrunError('InvalidArgument', 'HEALTHCHECK is not supported by tsctl build');
      throw new TsrunError('InvalidArgument', `unknown instruction ${ins.cmd}`);
    }

    async function copyStep(ins: Instruction, parent: Step, state: ImageState, vars: Map<string, string>, keyOf: (...p: string[]) => string, hit: (k: string) => Promise<Step | undefined>): Promise<Step> {
      const cmd = ins.cmd as 'COPY' | 'ADD';
      for (const f of ins.flags.keys()) {
        if (f !== 'chown' && !(f === 'from' && cmd === 'COPY')) throw new TsrunError('InvalidArgument', `${cmd} --${f} is not supported`);
      }
      const words = ins.json !== undefined ? ins.json.map((w) => processWord(w, vars, esc)) : processWords(ins.args, vars, esc);
      if (words.length < 2) throw new TsrunError('InvalidArgument', `${cmd} requires at least two arguments, but got ${words.length}`);
      const rawDest = words[words.length - 1]!;
      const wd = state.config.config.WorkingDir ?? '/';
      const dest = (rawDest.startsWith('/') ? rawDest : path.posix.join(wd === '' ? '/' : wd, rawDest)) + (rawDest.endsWith('/') || rawDest === '.' ? '/' : '');
      const chown = ins.flags.has('chown') ? processWord(ins.flags.get('chown')!, vars, esc) : undefined;
      const from = ins.flags.get('from');
      const srcs = words.slice(0, -1);
      for (const s of srcs) {
        if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s) || s.startsWith('git@')) throw new TsrunError('InvalidArgument', `${cmd} ${s}: remote sources are not supported: tsctl build does not reach the network (download it into the context)`);
      }
      const go = async (root: SourceRoot, rootId: string): Promise<Step> => {
        const resolved = srcs.flatMap((s) => resolveSources(root, s));
        const plan = { cmd, root, sources: planSources(root, resolved, cmd), dest, chown };
        const digest = sourceDigest(plan.sources.flatMap((p) => p.entries.map((e) => ({ ...e, rel: `${p.source.rel}/${e.rel}` }))));
        const key = keyOf(cmd, rootId, JSON.stringify(srcs), dest, chown ?? '', digest, JSON.stringify(plan.sources.map((p) => p.tar ?? '')));
        const c = await hit(key);
        if (c !== undefined) return c;
        const text = `${cmd} ${from !== undefined ? `--from=${from} ` : ''}${plan.sources.length === 1 && !plan.sources[0]!.source.st.isDirectory() ? 'file' : 'dir'}:${digest} in ${dest} `;
        const layer = await withSnapshot(parent, state, { created_by: `/bin/sh -c #(nop) ${text}` }, (mounts) => withMountedSnapshot(mounts, (rootfs) => copyInto(rootfs, plan)));
        return record(key, parent, state, layer);
      };
      if (from === undefined) return go({ dir: o.context, isContext: true, ignore: o.ignore }, 'context');
      // keyed by the source's config digest: a stage rebuilt or an image re-tagged is a new source
      return withStageRoot(processWord(from, vars, esc), (dir, id) => go({ dir, isContext: false }, `from:${id}`));
    }

    const final = done[targetIdx]!;
    if (final.id === '') throw new TsrunError('InvalidArgument', 'no image was generated: the target stage is FROM scratch with no instructions');
    // the other stages' results (COPY --from sources) stay with the image, as docker keeps them,
    // so a rebuild finds them in the cache; `rmi` lets the collector take them too
    const stageRefs: Record<string, string> = {};
    done.forEach((d, i) => {
      if (i !== targetIdx && d.id !== '' && d.id !== final.id) stageRefs[`containerd.io/gc.ref.content.stage.${i}`] = d.id;
    });
    const { manifest, config } = await storeImage(lc, final.state, stageRefs);
    const names = o.tags.length > 0 ? o.tags : [untaggedName(config.digest)];
    for (const n of names) await nameImage(lc, n, manifest);
    return config.digest;
  });
  const unused = [...o.buildArgs.keys()].filter((k) => !consumed.has(k));
  if (unused.length > 0) o.warn(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed`);
  return id;
}

