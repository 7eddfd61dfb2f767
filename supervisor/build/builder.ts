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
 *
 * A rebuild costs a fixed handful of round trips, not some per step: what the cache lookups need is
 * read once at the start, alongside the lease and the base images (every cached step config with
 * its labels, the committed snapshots, the tags' current targets). A hit is then found without a
 * call; its config blob is not read (the state it makes is computed as a miss would compute it, the
 * layer and diff id coming from the step's label) unless a later miss builds on it; and a final
 * image that the tags already name is not written again.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { TsrunError } from '../../spec/errors';
import type { TsrundClient } from '../client';
import { dockerName, fullName } from '../tsctl/commands/images';
import { chainIds, SNAPSHOTTER, withMountedSnapshot, type SnapshotMount } from '../tsctl/image-run';
import { resolveSources, sourceDigest, type SourceRoot } from './context';
import { copyInto, planSources } from './copy-step';
import { parseDockerfile, type Instruction } from './dockerfile';
import type { IgnoreRules } from './dockerignore';
import { appendStep, cloneState, commitChain, configGcLabels, diffLayer, isRpc, manifestOf, nameImage, readImageState, readJson, scratchState, storeConfig, storeManifest, topChain, unpackState, untaggedName, withLease, writeBlob, CONFIG_TYPE, type Desc, type ImageState, type OciConfig } from './layer';
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
  /** the config blob as stored: its size and labels (not known for a base image's) */
  blob?: { size: number; labels: Record<string, string> };
  /**
   * A cache hit whose blob was not read: `state` is what the step makes, except the times in its
   * history and `created`; settle() reads those before anything is built on it
   */
  derived?: boolean;
}

/** A cached step config as Content.List gives it. */
interface CacheEntry {
  digest: string;
  size: number;
  labels: Record<string, string>;
  /** ns since the epoch, to prefer the newest */
  created: number;
}

/** What the build reads once at its start for every cache lookup and for the end. */
interface Known {
  /** cached step configs by cache key, newest first */
  readonly steps: Map<string, CacheEntry[]>;
  /** committed overlayfs snapshots (chain ids), kept up to date as the build commits and unpacks */
  readonly chains: Set<string>;
  /** the manifest digest each -t name points at now */
  readonly tags: Map<string, string>;
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
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

/** The cached step configs, the committed snapshots and the tags' targets: three calls at once. */
async function readKnown(client: TsrundClient, tags: readonly string[], noCache: boolean): Promise<Known> {
  type Info = { digest: string; size: unknown; labels: Record<string, string>; createdAt?: { seconds: unknown; nanos: number } | null };
  const listSteps = async (): Promise<Map<string, CacheEntry[]>> => {
    const steps = new Map<string, CacheEntry[]>();
    if (noCache) return steps;
    for await (const m of client.stream<{ info: Info[] }>('Content', 'List', { filters: [`labels."${CACHE_LABEL}"`] }).messages) {
      for (const i of m.info) {
        const key = i.labels[CACHE_LABEL]!;
        const created = i.createdAt ? num(i.createdAt.seconds) * 1e9 + i.createdAt.nanos : 0;
        steps.set(key, [...(steps.get(key) ?? []), { digest: i.digest, size: num(i.size), labels: i.labels, created }]);
      }
    }
    for (const list of steps.values()) list.sort((a, b) => b.created - a.created || (a.digest < b.digest ? -1 : 1));
    return steps;
  };
  const listChains = async (): Promise<Set<string>> => {
    const chains = new Set<string>();
    for await (const m of client.stream<{ info: Array<{ name: string }> }>('Snapshots', 'List', { snapshotter: SNAPSHOTTER, filters: ['kind==committed'] }).messages) for (const i of m.info) chains.add(i.name);
    return chains;
  };
  const listTags = async (): Promise<Map<string, string>> => {
    if (tags.length === 0) return new Map();
    const { images } = await client.call<{ images: Array<{ name: string; target: { digest: string } | null }> }>('Images', 'List', { filters: tags.map((t) => `name==${JSON.stringify(t)}`) });
    return new Map(images.filter((i) => i.target !== null).map((i) => [i.name, i.target!.digest]));
  };
  const [steps, chains, tagMap] = await Promise.all([listSteps(), listChains(), listTags()]);
  return { steps, chains, tags: tagMap };
}

/** Do two configs agree but for their history and `created` (the times a derived step cannot know)? */
function sameButTimes(a: OciConfig, b: OciConfig): boolean {
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, canon(o[k])]));
  };
  const strip = (c: OciConfig): string => JSON.stringify(canon({ ...c, history: undefined, created: undefined }));
  return strip(a) === strip(b);
}

/** Start reading `p` now; its failure surfaces where it is awaited, never as an unhandled rejection. */
function early<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

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

  // read alongside Leases.Create: the cache, the snapshots, the tags, the stages' base images
  const known = early(readKnown(client, o.tags, o.noCache));
  const images = new Map<string, Promise<{ state: ImageState; id: string }>>();
  const imageState = (full: string): Promise<{ state: ImageState; id: string }> => {
    let p = images.get(full);
    if (p === undefined) images.set(full, (p = early(readImageState(client, full))));
    return p;
  };
  const stageNames = new Set(used.map((st) => st.name));
  for (const st of used) {
    try {
      const w = processWords(st.from.args, globalArgs, esc)[0];
      if (w !== undefined && w !== 'scratch' && !stageNames.has(w.toLowerCase())) void imageState(fullName(w));
    } catch {
      // a bad FROM is reported when its stage starts
    }
  }

  const id = await withLease(client, async (lc) => {
    const done: Step[] = [];
    const byName = new Map<string, number>();

    /** the newest cached step for `key` whose chain snapshot exists; `next` is what a miss would start from */
    const cached = async (key: string, parent: Step, next: ImageState): Promise<Step | undefined> => {
      if (o.noCache) return undefined;
      const k = await known;
      for (const f of k.steps.get(key) ?? []) {
        const blob = { size: f.size, labels: f.labels };
        const label = f.labels[LAYER_LABEL];
        // no layer: the parent's chain, which exists
        if (label === undefined) return { state: next, id: f.digest, blob, derived: true };
        const [mediaType = '', digest = '', size = '0', diffId] = label.split(' ');
        const layer = { mediaType, digest, size: Number(size) };
        let state: ImageState;
        let derived = true;
        if (diffId !== undefined) {
          state = cloneState(next);
          state.layers.push(layer);
          state.config.rootfs.diff_ids.push(diffId);
        } else {
          // recorded before the label named the diff id: the config has it
          const config = await readJson<OciConfig>(lc, f.digest, 'cached step config').catch(() => undefined);
          if (config === undefined) continue;
          state = { config, layers: [...parent.state.layers, layer] };
          if (state.layers.length !== config.rootfs.diff_ids.length) continue;
          derived = false;
        }
        if (!k.chains.has(topChain(state))) continue;
        return { state, id: f.digest, blob, derived };
      }
      return undefined;
    };

    /** before a miss builds `next` on a derived `parent`: the history and `created` of its blob */
    const settle = async (parent: Step, next: ImageState): Promise<void> => {
      if (parent.derived !== true) return;
      const real = await readJson<OciConfig>(lc, parent.id, 'cached step config');
      if (!sameButTimes(real, parent.state.config)) throw new TsrunError('Internal', `cached step ${short(parent.id)}: its config is not the one this build computes for it (build with --no-cache)`);
      for (const st of [parent.state, next]) {
        if (real.history === undefined) delete st.config.history;
        else st.config.history = real.history;
        if (real.created === undefined) delete st.config.created;
        else st.config.created = real.created;
      }
      parent.derived = false;
    };

    const record = async (key: string, parent: Step, state: ImageState, layer: { layer: Desc; diffId: string } | undefined): Promise<Step> => {
      const top = topChain(state);
      const labels: Record<string, string> = { [CACHE_LABEL]: key };
      if (parent.id !== '') labels[PARENT_REF] = parent.id;
      if (top !== '') labels[`containerd.io/gc.ref.snapshot.${SNAPSHOTTER}`] = top;
      state.layers.forEach((l, i) => (labels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
      if (layer !== undefined) labels[LAYER_LABEL] = `${layer.layer.mediaType} ${layer.layer.digest} ${layer.layer.size} ${layer.diffId}`;
      const d = await writeBlob(lc, Buffer.from(JSON.stringify(state.config)), CONFIG_TYPE, labels);
      const entry = { digest: d.digest, size: d.size, labels, created: Date.now() * 1e6 };
      // a later stage with the same steps finds this one, as a fresh lookup would
      const k = await known;
      k.steps.set(key, [entry, ...(k.steps.get(key) ?? [])]);
      return { state, id: d.digest, blob: { size: d.size, labels } };
    };

    /** a step's active snapshot on the parent's chain, `fn` on its mounts, then its layer committed */
    const withSnapshot = async (parent: Step, state: ImageState, entry: { created_by: string }, fn: (mounts: SnapshotMount[]) => Promise<void>): Promise<{ layer: Desc; diffId: string } | undefined> => {
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
        else {
          await commitChain(lc, state, key);
          (await known).chains.add(topChain(state));
        }
        return layer;
      } catch (e) {
        await lc.call('Snapshots', 'Remove', { snapshotter: SNAPSHOTTER, key }).catch(() => undefined);
        throw e;
      }
    };

    const fromImage = async (name: string): Promise<Step> => {
      if (name === 'scratch') return { state: scratchState(), id: '' };
      const stageIdx = byName.get(name.toLowerCase());
      if (stageIdx !== undefined) return { ...done[stageIdx]!, state: cloneState(done[stageIdx]!.state) };
      const full = fullName(name);
      let r;
      try {
        r = await imageState(full);
      } catch (e) {
        if (isRpc(e, 'NotFound')) throw new TsrunError('NotFound', `Unable to find image '${dockerName(full).join(':')}' locally (tsctl build does not pull: tsctl pull it first)`);
        throw e;
      }
      const { chains } = await known;
      const chain = chainIds(r.state.config.rootfs.diff_ids);
      if (chain.length > 0 && !chains.has(chain[chain.length - 1]!)) {
        await unpackState(lc, r.state, full, r.id);
        for (const c of chain) chains.add(c);
      }
      return { state: cloneState(r.state), id: r.id };
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
      cur = { ...cur, state: cloneState(cur.state) };
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
        const c = await cached(key, parent, state);
        if (c !== undefined) o.out(' ---> Using cache');
        else await settle(parent, state);
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
      const abs = rawDest.startsWith('/') ? rawDest : path.posix.join(wd === '' ? '/' : wd, rawDest);
      // one trailing / says "into this directory" (history shows `in /app/`, not `in /app//`)
      const dest = rawDest.endsWith('/') || rawDest === '.' ? `${abs.replace(/\/+$/, '')}/` : abs;
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
    let config: Desc;
    if (final.blob !== undefined) {
      // the last step's config is the image's: stored already, it only needs the labels it lacks
      config = { mediaType: CONFIG_TYPE, digest: final.id, size: final.blob.size };
      const want: Record<string, string> = { ...stageRefs, ...configGcLabels(final.state) };
      const lacking = Object.keys(want).filter((k) => final.blob!.labels[k] !== want[k]);
      if (lacking.length > 0) await lc.call('Content', 'Update', { info: { digest: final.id, labels: want }, updateMask: { paths: lacking.map((k) => `labels.${k}`) } });
    } else config = await storeConfig(lc, final.state, stageRefs);
    const names = o.tags.length > 0 ? o.tags : [untaggedName(config.digest)];
    // a rebuild that changed nothing finds every name on this manifest already
    const { tags } = await known;
    const want = manifestOf(config, final.state.layers).desc.digest;
    if (names.every((n) => tags.get(n) === want)) return config.digest;
    const manifest = await storeManifest(lc, config, final.state.layers);
    for (const n of names) if (tags.get(n) !== manifest.digest) await nameImage(lc, n, manifest);
    return config.digest;
  });
  const unused = [...o.buildArgs.keys()].filter((k) => !consumed.has(k));
  if (unused.length > 0) o.warn(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed`);
  return id;
}

