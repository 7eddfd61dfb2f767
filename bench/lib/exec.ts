/*
 * One timed command. stdout and stderr go to files, not pipes: a container inherits the stdio
 * of `create` and `run`, and a pipe held open by it would keep spawnSync waiting until the
 * container exits. The clock covers fork, exec and wait, the same for every subject.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What one timed invocation did. */
export interface Timed {
  readonly ms: number;
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs commands with their output captured in two files under `dir`. */
export interface Runner {
  /** Run argv[0] with the rest as arguments, timing it. */
  timed(argv: readonly string[]): Timed;
  /** Like timed, but throws with the command's stderr when it exits non-zero. */
  check(argv: readonly string[]): Timed;
}

/** A runner whose output files live in `dir`. */
export function commandRunner(dir: string, env: NodeJS.ProcessEnv = process.env): Runner {
  const outFile = path.join(dir, 'stdout');
  const errFile = path.join(dir, 'stderr');
  const timed = (argv: readonly string[]): Timed => {
    const out = fs.openSync(outFile, 'w');
    const err = fs.openSync(errFile, 'w');
    let r: ReturnType<typeof spawnSync>;
    let ms: number;
    try {
      const t0 = process.hrtime.bigint();
      r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', out, err], env, timeout: 60_000 });
      ms = Number(process.hrtime.bigint() - t0) / 1e6;
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
    if (r.error) throw new Error(`${argv.join(' ')}: ${r.error.message}`);
    return { ms, status: r.status, signal: r.signal, stdout: fs.readFileSync(outFile, 'utf8'), stderr: fs.readFileSync(errFile, 'utf8') };
  };
  return {
    timed,
    check(argv) {
      const t = timed(argv);
      if (t.status !== 0) {
        const why = t.signal ? `killed by ${t.signal}` : `exit status ${String(t.status)}`;
        throw new Error(`${argv.join(' ')}: ${why}: ${t.stderr.trim()}`);
      }
      return t;
    },
  };
}

/** Output of a command that must succeed (for versions and host facts); undefined when it fails. */
export function outputOf(argv: readonly string[]): string | undefined {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export { which } from '../../test/helpers/host';
