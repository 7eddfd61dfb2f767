/*
 * The default seccomp profile of tsctl containers: docker's default profile already converted to a
 * linux.seccomp object (test/fixtures/seccomp/docker-default.json, see its README), found at run
 * time — $TSCTL_SECCOMP_PROFILE, else <repo>/test/fixtures/seccomp/docker-default.json next to the
 * running script, else <install dir>/seccomp/default.json (what `make install` ships). None found: no filter (said once
 * on stderr by the caller through `--security-opt seccomp=unconfined` being the effective choice).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

// The running bundle: __filename, except in a startup snapshot, where it is the path the snapshot
// was built from (startup/entry.ts sets the path node was started with).
let runningScript = __filename;

/** Where the running tsctl bundle is (startup/entry.ts, when started from its snapshot). */
export function setRunningScript(p: string): void {
  runningScript = p;
}

/** Candidate profile paths, first existing wins. */
export function seccompCandidates(env: NodeJS.ProcessEnv = process.env, script: string = runningScript): string[] {
  const fromEnv = env['TSCTL_SECCOMP_PROFILE'];
  const repo = path.resolve(path.dirname(script), '..');
  return [
    ...(fromEnv !== undefined && fromEnv !== '' ? [fromEnv] : []),
    path.join(repo, 'test', 'fixtures', 'seccomp', 'docker-default.json'),
    path.join(repo, '..', '..', 'test', 'fixtures', 'seccomp', 'docker-default.json'),
    // make install: $(PREFIX)/lib/tsrun/{bin/tsctl,seccomp/default.json}
    path.join(repo, 'seccomp', 'default.json'),
  ];
}

/** The default profile, or undefined when none is installed. */
export function findSeccompProfile(): unknown {
  for (const p of seccompCandidates()) {
    try {
      return JSON.parse(fs.readFileSync(p, 'utf8')) as unknown;
    } catch {
      // next
    }
  }
  return undefined;
}
