/**
 * CNI plugins start with posix_spawn (supervisor/networks/plugin-spawn.ts): the child gets its
 * stdin, environment and exit status through as with Node's spawn, no descriptor of tsrund's
 * beyond 0-2 (not even one without O_CLOEXEC), no ignored or blocked signal, and a plugin that
 * hangs is killed at the timeout and waited for even while a process it started holds its stdout.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { runPosixSpawn, type SpawnAnswer, type SpawnCall } from '../../../supervisor/networks/plugin-spawn';

const koffiPath = require.resolve('koffi');

const scripts = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-pspawn-'));
t.teardown(() => fs.rmSync(scripts, { recursive: true, force: true }));
let n = 0;

/** Run `script` as a plugin is run: an executable file, no arguments. */
function run(call: Partial<SpawnCall> & { script: string }): Promise<SpawnAnswer> {
  const file = path.join(scripts, `plugin-${n++}`);
  fs.writeFileSync(file, `#!/bin/sh\n${call.script}\n`, { mode: 0o755 });
  const m: SpawnCall = { file: call.file ?? file, env: { PATH: '/usr/bin:/bin', ...call.env }, stdin: call.stdin ?? '', timeoutMs: call.timeoutMs ?? 10_000 };
  return new Promise((resolve) => runPosixSpawn(koffiPath, m, 1 << 20, resolve));
}

function ok(t: Test, a: SpawnAnswer): Extract<SpawnAnswer, { code: number | null }> {
  if ('error' in a) {
    t.fail(`spawn failed: ${a.error}`);
    throw new Error(a.error);
  }
  return a;
}

t.test('stdin, environment, stdout, stderr and the exit status pass through', async (t) => {
  const a = ok(t, await run({ script: 'read -r line; echo "got $line $CNI_COMMAND"; echo oops >&2; exit 3', stdin: 'hello\n', env: { CNI_COMMAND: 'ADD' } }));
  t.equal(a.stdout, 'got hello ADD\n');
  t.equal(a.stderr, 'oops\n');
  t.equal(a.code, 3);
  t.equal(a.signal, null);
  t.equal(a.timedOut, false);
});

t.test('no descriptor beyond stdio reaches the plugin, even one without O_CLOEXEC', async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as { load(p: string): { func(sig: string): (...a: unknown[]) => number } };
  const dup2 = koffi.load('libc.so.6').func('int dup2(int fd, int to)');
  const file = path.join(scripts, 'f');
  const fd = fs.openSync(file, 'w');
  // dup2(2) never sets FD_CLOEXEC on its copy; a number no shell or Node uses for itself
  const leaky = dup2(fd, 217);
  t.equal(leaky, 217, 'a descriptor without O_CLOEXEC exists in this process');
  try {
    const a = ok(t, await run({ script: 'if [ -e /proc/$$/fd/217 ]; then echo leaked; else echo clean; fi' }));
    t.equal(a.stdout, 'clean\n', 'the plugin does not have it');
  } finally {
    fs.closeSync(leaky);
    fs.closeSync(fd);
  }
});

t.test('signals 1-31 are at their defaults and none is blocked (Node ignores SIGPIPE)', async (t) => {
  // read by the shell itself (builtins, no fork): dash blocks every signal around its forks
  const a = ok(t, await run({ script: 'while read -r k v; do case $k in SigBlk:|SigIgn:) echo "$k $v";; esac; done < /proc/self/status' }));
  t.match(a.stdout, /^SigBlk:\s+0+$/m, 'nothing blocked');
  const ign = /^SigIgn:\s+([0-9a-f]+)$/m.exec(a.stdout);
  t.ok(ign !== null, 'SigIgn read');
  // glibc's posix_spawn leaves its two internal signals (32, 33) ignored in every child it makes
  t.equal(BigInt(`0x${ign?.[1] ?? '1'}`) & 0x7fffffffn, 0n, 'no signal of 1-31 ignored');
});

t.test('a plugin that cannot start is an error naming it', async (t) => {
  const a = await run({ script: '', file: '/nonexistent/plugin' });
  t.ok('error' in a && /\/nonexistent\/plugin ENOENT/.test(a.error), 'ENOENT with the path');
});

t.test('a plugin that hangs is killed at the timeout, even while its child holds stdout', async (t) => {
  const pidFile = path.join(scripts, 'pid');
  t.teardown(() => {
    try {
      process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      // gone already
    }
  });
  const t0 = performance.now();
  const a = ok(t, await run({ script: `sleep 60 & echo $! > ${pidFile}; exec sleep 60`, timeoutMs: 300 }));
  const ms = performance.now() - t0;
  t.equal(a.timedOut, true);
  t.equal(a.signal, 'SIGKILL');
  t.equal(a.code, null);
  t.ok(ms < 10_000, `answered soon after the timeout (${Math.round(ms)} ms), not when the grandchild lets go of stdout`);
});
