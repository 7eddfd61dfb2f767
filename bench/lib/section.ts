/*
 * What the runner knows about a benchmark section. A section sets up, measures its subjects
 * interleaved round by round, cleans up after itself (also when it fails or is interrupted),
 * and returns its part of RESULTS.md. Sections are listed in bench/sections/index.ts.
 */

/** Shared inputs of every section. */
export interface BenchContext {
  /** The repository root (bin/, build/, scripts/ live here). */
  readonly repo: string;
  /** A directory for this run, removed by the runner at the end. */
  readonly tmp: string;
  /** Rounds to measure (every subject once per round). */
  readonly runs: number;
  /** Progress on stderr. */
  readonly progress: (line: string) => void;
  /** True once SIGINT/SIGTERM arrived: stop measuring and clean up. */
  readonly stopping: () => boolean;
}

/** One section's contribution to RESULTS.md. */
export interface SectionReport {
  /** Markdown, starting with a level-2 heading. */
  readonly markdown: string;
  /** Versions of the programs it compared, for the machine table. */
  readonly versions: Readonly<Record<string, string>>;
}

/** A benchmark section. */
export interface Section {
  /** Short name used on the command line (`--sections cli,lifecycle`). */
  readonly name: string;
  /** Why this host cannot run it (missing program, not root), or undefined when it can. */
  unavailable(ctx: BenchContext): string | undefined;
  /** Set up, measure, clean up. */
  run(ctx: BenchContext): Promise<SectionReport>;
}

/** Timing samples (ms) keyed by step and subject, in insertion order. */
export interface Samples {
  add(step: string, subject: string, ms: number): void;
  get(step: string, subject: string): readonly number[];
  readonly steps: readonly string[];
}

/** An empty sample store. */
export function samples(): Samples {
  const byKey = new Map<string, number[]>();
  const steps: string[] = [];
  return {
    add(step, subject, ms) {
      if (!steps.includes(step)) steps.push(step);
      const key = `${step}\u0000${subject}`;
      const list = byKey.get(key) ?? [];
      list.push(ms);
      byKey.set(key, list);
    },
    get: (step, subject) => byKey.get(`${step}\u0000${subject}`) ?? [],
    steps,
  };
}
