/**
 * The CVE-2019-5736 class: no process that tsrun puts into a container's namespaces may show the
 * container a host file it could reopen for writing, whatever the container's capabilities.
 *
 * Container A runs a static probe (compiled here with `cc -static`) as its init, with every
 * capability (or the defaults plus CAP_SYS_PTRACE). It scans /proc/N/{exe,cwd,root,fd/*,map_files/*}
 * of every other process in its pid namespace, and the root of its mount namespace (entered
 * through /proc/N/ns/mnt, with every capability), records each link's device and inode, and tries
 * the attack: open the link O_PATH, then reopen that fd O_WRONLY through /proc/self/fd (it never
 * writes). Meanwhile the test runs `tsrun exec` into A, and `tsrun run` of container B, which
 * joins A's pid namespace by path. B's hooks (the probe again) each hold B's set-up until A has
 * scanned twice: the prestart hook (in the runtime's namespaces, unseen by A) and the
 * createContainer hook while the rootfs is being set up, before pivot_root; the startContainer
 * hook (the probe copied into B's rootfs) after it, so B's init is seen mid-set-up.
 * The helper's sealed stage (docs/native-helper.md) makes every such process's exe a sealed
 * memfd; before it, it was the host's node binary. And B's init is born only after pivot_root:
 * before, A saw it with the host's root directory as /proc/N/root while B's rootfs was set up.
 *
 * Also: a config with a 1 MB and a 20 MB annotation runs with hooks, whose state documents
 * carry the annotations (they once had to fit one sync datagram).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { makeBundle, type Bundle } from '../helpers/bundle';
import { runDetached, waitForStatus } from '../helpers/container';
import type { OciSpec } from '../helpers/oci';
import { requires } from '../helpers/requires';
import { describe, runtimePath } from '../helpers/runtime';
import { shimRig } from '../helpers/shim';
import { waitFor } from '../helpers/wait';

const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static FILE *out;
static struct { unsigned long long dev, ino; char kind[8]; } seen[8192];
static int nseen;

static int first(const char *kind, unsigned long long dev, unsigned long long ino) {
  for (int i = 0; i < nseen; i++)
    if (seen[i].dev == dev && seen[i].ino == ino && strcmp(seen[i].kind, kind) == 0) return 0;
  if (nseen < 8192) {
    seen[nseen].dev = dev, seen[nseen].ino = ino;
    snprintf(seen[nseen++].kind, sizeof seen[0].kind, "%s", kind);
  }
  return 1;
}

/* One magic link: where it leads, and whether the attack gets a writable fd of it. */
static void look(const char *pid, const char *kind, const char *rel) {
  char p[600], target[600], q[64];
  snprintf(p, sizeof p, "/proc/%s/%s", pid, rel);
  ssize_t n = readlink(p, target, sizeof target - 1);
  if (n < 0) return;
  target[n] = 0;
  int o = open(p, O_PATH | O_CLOEXEC);
  if (o < 0) return;
  struct stat st;
  if (fstat(o, &st) == 0) {
    unsigned long long dev = st.st_dev, ino = st.st_ino;
    if (first(kind, dev, ino)) fprintf(out, "L %s %s %llu:%llu %s\n", pid, kind, dev, ino, target);
    if (S_ISREG(st.st_mode)) {
      snprintf(q, sizeof q, "/proc/self/fd/%d", o);
      int w = open(q, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (w >= 0) {
        if (first("w", dev, ino)) fprintf(out, "W %s %s %llu:%llu %s\n", pid, kind, dev, ino, target);
        /* A memfd is no host file, so the write is tried for real: its seals must refuse it. */
        if (strncmp(target, "/memfd:", 7) == 0 && first("m", dev, ino)) {
          int wrote = write(w, "", 1) >= 0 || ftruncate(w, 0) == 0;
          fprintf(out, "M %s %s %llu:%llu %s %s\n", pid, kind, dev, ino, wrote ? "written" : "refused", target);
        }
        close(w);
      }
    }
  }
  close(o);
}

/*
 * The process's mount namespace, entered as a container with CAP_SYS_ADMIN could (in a child, so
 * the probe stays where it is): the root it gives. Without the capability setns fails: nothing.
 */
static void mntns(const char *pid) {
  char p[300];
  snprintf(p, sizeof p, "/proc/%s/ns/mnt", pid);
  int fd = open(p, O_RDONLY | O_CLOEXEC), pp[2];
  if (fd < 0) return;
  if (pipe(pp) < 0) { close(fd); return; }
  unsigned long long v[2] = {0, 0};
  pid_t c = fork();
  if (c == 0) {
    struct stat st;
    if (setns(fd, CLONE_NEWNS) == 0 && stat("/", &st) == 0) v[0] = st.st_dev, v[1] = st.st_ino;
    _exit(write(pp[1], v, sizeof v) == sizeof v ? 0 : 1);
  }
  close(pp[1]);
  if (c < 0 || read(pp[0], v, sizeof v) != sizeof v) v[1] = 0;
  if (c > 0) waitpid(c, NULL, 0);
  close(pp[0]);
  close(fd);
  if (v[1] != 0 && first("mnt", v[0], v[1])) fprintf(out, "L %s mnt %llu:%llu /\n", pid, v[0], v[1]);
}

static void dir(const char *pid, const char *kind, const char *sub) {
  char p[300], rel[600];
  snprintf(p, sizeof p, "/proc/%s/%s", pid, sub);
  DIR *d = opendir(p);
  if (d == NULL) return;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    snprintf(rel, sizeof rel, "%s/%s", sub, e->d_name);
    look(pid, kind, rel);
  }
  closedir(d);
}

static int now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static long counter(const char *file) {
  char b[32] = "";
  FILE *f = fopen(file, "r");
  if (f == NULL) return -1;
  long v = fgets(b, sizeof b, f) ? atol(b) : -1;
  fclose(f);
  return v;
}

int main(int argc, char **argv) {
  char file[512], tmp[520], stop[512];
  if (argc == 3 && strcmp(argv[1], "wait") == 0) {
    /* A hook: hold the set-up until the scanner has finished two more full scans (max 30 s). */
    snprintf(file, sizeof file, "%s/scans", argv[2]);
    long s0 = counter(file);
    for (int i = 0; i < 3000 && counter(file) < s0 + 2; i++) usleep(10000);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "count") == 0) {
    /* A hook: how many bytes of state arrived on stdin, and do they end as a document does. */
    char b[65536], last = 0;
    unsigned long long total = 0;
    for (ssize_t n; (n = read(0, b, sizeof b)) != 0;) {
      if (n < 0) { if (errno == EINTR) continue; return 1; }
      total += (unsigned long long)n;
      last = b[n - 1];
    }
    FILE *f = fopen(argv[2], "a");
    if (f == NULL) return 1;
    fprintf(f, "%llu %c\n", total, last);
    return fclose(f) == 0 ? 0 : 1;
  }
  if (argc != 3 || strcmp(argv[1], "scan") != 0) return 2;
  snprintf(file, sizeof file, "%s/findings", argv[2]);
  snprintf(stop, sizeof stop, "%s/stop", argv[2]);
  out = fopen(file, "w");
  if (out == NULL) return 1;
  setvbuf(out, NULL, _IOLBF, 0);
  char self[32];
  snprintf(self, sizeof self, "%d", getpid());
  int deadline = now_ms() + 240000;
  long scans = 0;
  while (access(stop, F_OK) != 0 && now_ms() < deadline) {
    DIR *d = opendir("/proc");
    if (d == NULL) return 1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9' || strcmp(e->d_name, self) == 0) continue;
      look(e->d_name, "exe", "exe");
      look(e->d_name, "cwd", "cwd");
      look(e->d_name, "root", "root");
      dir(e->d_name, "fd", "fd");
      dir(e->d_name, "map", "map_files");
      mntns(e->d_name);
    }
    closedir(d);
    snprintf(file, sizeof file, "%s/scans", argv[2]);
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    FILE *f = fopen(tmp, "w");
    if (f != NULL) {
      fprintf(f, "%ld\n", ++scans);
      fclose(f);
      rename(tmp, file);
    }
  }
  fprintf(out, "S %ld\n", scans);
  return 0;
}
`;

// By bit number (capability.h), for "every capability the host has".
const CAP_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
  'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
  'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Every capability in this process's bounding set (a host may lack some, e.g. inside a VM sandbox). */
function hostCaps(): string[] {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  const bnd = BigInt(`0x${m?.[1] ?? '0'}`);
  return CAP_NAMES.filter((_, bit) => ((bnd >> BigInt(bit)) & 1n) === 1n);
}

/** Compile the probe once per test file, into a directory the teardown removes. */
function buildProbe(b: Bundle): string {
  const dir = b.hostDir('probe-src');
  fs.writeFileSync(path.join(dir, 'probe.c'), PROBE_C);
  const exe = path.join(dir, 'probe');
  const r = spawnSync('cc', ['-static', '-O1', '-o', exe, path.join(dir, 'probe.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc -static probe.c: ${r.stderr}`);
  return exe;
}

const key = (st: fs.Stats | fs.BigIntStats): string => `${st.dev}:${st.ino}`;

/**
 * Host files no container may reach: node and every file it maps (libc, ld.so, ...), the
 * helper's files on disk, the CLI bundle, and host directories a set-up process could sit in.
 */
function hostFiles(extraDirs: readonly string[]): Map<string, string> {
  const files = new Map<string, string>();
  const add = (p: string): void => {
    try {
      files.set(key(fs.statSync(p)), p);
    } catch {
      // not there on this build (e.g. no tsrun.node): nothing to guard
    }
  };
  add(process.execPath);
  for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const p = line.split(/\s+/)[5];
    if (p?.startsWith('/')) add(p);
  }
  const repo = path.resolve(path.dirname(runtimePath), '..');
  for (const f of ['build/tsrun.node', 'build/tsrun-stage', 'bin/tsrun', 'bin/tsrun.js', 'bin/tsrun-lifecycle.js']) {
    add(path.join(repo, f));
  }
  for (const d of ['/', '/usr/bin', process.cwd(), repo, ...extraDirs]) add(d);
  return files;
}

/** The keys of a rootfs and of every directory under it (the test's small busybox trees). */
function rootfsDirs(rootfs: string): string[] {
  const keys = [key(fs.statSync(rootfs))];
  for (const e of fs.readdirSync(rootfs, { recursive: true, withFileTypes: true })) {
    if (e.isDirectory()) keys.push(key(fs.statSync(path.join(e.parentPath, e.name))));
  }
  return keys;
}

interface Finding {
  line: string;
  kind: string;
  target: string;
  key: string;
  writable: boolean;
}

function findings(text: string): Finding[] {
  const out: Finding[] = [];
  for (const line of text.split('\n')) {
    const m = /^([LW]) (\d+) (\S+) (\d+:\d+) (.*)$/.exec(line);
    if (m) out.push({ line, writable: m[1] === 'W', kind: m[3]!, key: m[4]!, target: m[5]! });
  }
  return out;
}

type Tap = Test;
type Variant = 'all capabilities' | 'CAP_SYS_PTRACE added';

/** Container A: the probe as init, scanning its pid namespace, with the variant's capabilities. */
async function startProber(t: Tap, variant: Variant): Promise<{ a: Bundle; aPid: number; probe: string; shared: string }> {
  const a = makeBundle(t, { args: ['/probe', 'scan', '/shared'] });
  const probe = buildProbe(a);
  const shared = a.hostDir('shared');
  fs.copyFileSync(probe, path.join(a.rootfs, 'probe'));
  fs.chmodSync(path.join(a.rootfs, 'probe'), 0o755);
  a.writeSpec((s) => {
    s.mounts.push({ destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] });
    const caps = s.process.capabilities!;
    if (variant === 'all capabilities') {
      for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = hostCaps();
    } else {
      for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = [...(caps[set] ?? []), 'CAP_SYS_PTRACE'];
    }
    s.process.noNewPrivileges = false;
  });
  const ca = a.rt.create(a.id, a.dir);
  t.equal(ca.code, 0, `create A, the prober (${describe(ca)})`);
  const aPid = JSON.parse(a.rt.state(a.id).stdout).pid as number;
  t.equal(a.rt.start(a.id).code, 0, 'start A');
  t.ok(await waitFor(() => fs.existsSync(path.join(shared, 'scans')), 20_000, 20), 'the probe scans');

  return { a, aPid, probe, shared };
}

/** Stop the probe, then judge what it saw; `rootfsB` is the rootfs of the container that joined. */
async function judge(t: Tap, a: Bundle, shared: string, probe: string, rootfsB: string, extraDirs: readonly string[], entersMountNs: boolean): Promise<void> {
  fs.writeFileSync(path.join(shared, 'stop'), '');
  t.ok(await waitForStatus(a.rt, a.id, 'stopped', 30_000), 'the probe stops');
  const text = fs.readFileSync(path.join(shared, 'findings'), 'utf8');
  t.match(text, /^S \d+$/m, 'the probe finished its scans');
  const all = findings(text);
  t.comment(`${all.length} distinct links seen`);

  const host = hostFiles([a.sandbox, a.dir, path.dirname(probe), ...extraDirs]);
  const hostRoot = key(fs.statSync('/'));
  const onHost = (f: Finding): boolean => host.has(f.key) && !(f.kind === 'cwd' && host.get(f.key) === rootfsB);
  if (process.env['DEBUG_PROBE']) t.comment(text);
  const bad = all.filter((f) => onHost(f) && f.key !== hostRoot);
  t.same(bad.map((f) => `${f.line} (= ${host.get(f.key)})`), [], 'no exe, map_files, fd or cwd link of a set-up process leads to a host file');
  // B's init is born after pivot_root (docs/native-helper.md, "What a container can still
  // see"): neither its root before pivot_root nor the old root pivot_root holds reaches A.
  const viaRoot = all.filter((f) => f.key === hostRoot);
  t.same(viaRoot.map((f) => f.line), [], 'no root, cwd, fd or mount namespace of a process in the shared pid namespace is the host root directory');
  const writable = all.filter((f) => f.writable && host.has(f.key));
  t.same(writable.map((f) => f.line), [], 'the attack reopened no host file for writing');
  const written = text.split('\n').filter((l) => /^M .* written /.test(l));
  t.same(written, [], "no memfd of the helper's (the stage, the plan, the hook states) took a write");

  // The scan saw B's init during its set-up (the hook holds it): its exe was the sealed stage.
  const setUp = all.filter((f) => f.kind === 'exe' && (/memfd:tsrun-stage/.test(f.target) || host.has(f.key)));
  t.ok(setUp.length > 0, 'the probe saw a process in set-up (by its exe)');
  t.ok(all.some((f) => f.kind === 'root' && f.key === key(fs.statSync(rootfsB))), "and B's processes, with B's rootfs as their root");
  if (entersMountNs) t.ok(all.some((f) => f.kind === 'mnt' && f.key === key(fs.statSync(rootfsB))), "and entered B's mount namespace, whose root is B's rootfs");
  // B's init mounts its deferred new filesystems (its proc) through its working directory, so for
  // that instant its cwd is the mount point: a directory of B's rootfs, never a host one.
  const cwds = new Set([...rootfsDirs(a.rootfs), ...rootfsDirs(rootfsB)]);
  const strayCwd = all.filter((f) => f.kind === 'cwd' && !cwds.has(f.key) && f.key !== hostRoot);
  t.same(strayCwd.map((f) => f.line), [], "every cwd seen is A's or B's rootfs or a directory in it");
  t.equal(a.rt.delete(a.id).code, 0, 'delete A');
}

/**
 * B joins A's pid namespace; hooks hold its set-up while A scans: prestart (run by the runtime,
 * outside A's view) and createContainer before pivot_root, startContainer (the probe copied into
 * B's rootfs, reading A's scan count through a bind of the shared directory) after it.
 */
function joinAndHold(s: OciSpec, aPid: number, probe: string, shared: string): void {
  s.linux!.namespaces = s.linux!.namespaces.map((n) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${aPid}/ns/pid` } : n));
  s.mounts.push({ destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] });
  const hold = { path: probe, args: ['probe', 'wait', shared] };
  s.hooks = { prestart: [hold], createContainer: [hold], startContainer: [{ path: '/probe', args: ['probe', 'wait', '/shared'] }] };
}

function copyProbe(probe: string, rootfs: string): void {
  fs.copyFileSync(probe, path.join(rootfs, 'probe'));
  fs.chmodSync(path.join(rootfs, 'probe'), 0o755);
}

for (const variant of ['all capabilities', 'CAP_SYS_PTRACE added'] as const) {
  t.test(`exec and a container sharing the pid namespace show ${variant} no host file`, async (t) => {
    if (!requires(t, 'root', 'busybox', 'cc', 'not-runc')) return;
    const { a, aPid, probe, shared } = await startProber(t, variant);

    // exec into A, a few times: each one's set-up runs inside A's pid namespace.
    for (let i = 0; i < 8; i++) {
      const r = a.rt.exec(['exec', a.id, '/bin/true']);
      t.equal(r.code, 0, `exec ${i} (${describe(r)})`);
    }

    // B joins A's pid namespace by path; its hooks hold it while A scans.
    const b = makeBundle(t, { args: ['true'] });
    copyProbe(probe, b.rootfs);
    b.writeSpec((s) => joinAndHold(s, aPid, probe, shared));
    const rb = b.rt.run(b.id, b.dir);
    t.equal(rb.code, 0, `run B in A's pid namespace (${describe(rb)})`);

    await judge(t, a, shared, probe, b.rootfs, [b.sandbox, b.dir], variant === 'all capabilities');
  });
}

t.test("the shim's library runtime: a container sharing the pid namespace shows no host file", async (t) => {
  if (!requires(t, 'root', 'busybox', 'cc', 'not-runc')) return;
  const { a, aPid, probe, shared } = await startProber(t, 'CAP_SYS_PTRACE added');
  const rig = shimRig(t);
  const id = rig.newId();
  copyProbe(probe, rig.bundle.rootfs);
  const c = await rig.start(id, { kind: 'library' }, ['true'], { patch: (s) => joinAndHold(s, aPid, probe, shared) });
  await c.create();
  const waited = c.wait();
  await c.start();
  t.equal((await waited).exitStatus, 0, 'the container ran in A\'s pid namespace');
  await c.delete();
  await judge(t, a, shared, probe, rig.bundle.rootfs, [rig.bundle.sandbox, rig.bundle.dir, rig.stateRoot], false);
});

t.test('joining a pid namespace, a set-up that fails before or after init is born names why and leaves nothing', async (t) => {
  if (!requires(t, 'root', 'busybox', 'not-runc')) return;
  const a = makeBundle(t, { args: ['sleep', '1000'] });
  const first = runDetached(a);
  const pidNs = fs.readlinkSync(`/proc/${first.pid}/ns/pid`);
  const inPidNs = (): number[] =>
    fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/ns/pid`) === pidNs;
      } catch {
        return false;
      }
    });
  const cases = [
    // The set-up process fails before pivot_root: a bind source that is not there.
    { what: 'a missing bind source (before pivot_root)', mount: { destination: '/data', type: 'bind', source: path.join(a.sandbox, 'no-such-dir'), options: ['rbind'] }, error: /mount \S*no-such-dir to \/data \(bind\).*no such file or directory/i },
    // Init fails after its birth: its deferred proc mount with an option procfs refuses.
    { what: 'a proc mount procfs refuses (in init)', mount: { destination: '/proc', type: 'proc', source: 'proc', options: ['no-such-option=1'] }, error: /mount proc to \/proc \(type proc\).*invalid argument/i },
  ];
  for (const c of cases) {
    const b = makeBundle(t, { args: ['true'] });
    b.writeSpec((s) => {
      s.linux.namespaces = s.linux.namespaces.map((n) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${first.pid}/ns/pid` } : n));
      if (c.mount.destination === '/proc') s.mounts = s.mounts.filter((m) => m.destination !== '/proc');
      s.mounts.push(c.mount);
    });
    const r = b.rt.run(b.id, b.dir);
    t.not(r.code, 0, `${c.what}: run fails (${describe(r)})`);
    t.match(r.stderr, c.error, `${c.what}: the error says what failed`);
    t.not(b.rt.state(b.id).code, 0, `${c.what}: no container is left`);
    t.same(inPidNs(), [first.pid], `${c.what}: no process is left in the shared pid namespace`);
  }
  t.equal(a.rt.kill(first.id, 'KILL').code, 0, 'kill A');
});

for (const mb of [1, 20]) {
  t.test(`a ${mb} MB annotation travels to the hooks`, async (t) => {
    if (!requires(t, 'root', 'busybox', 'cc')) return;
    const b = makeBundle(t, { args: ['true'] });
    const probe = buildProbe(b);
    const counts = path.join(b.hostDir('out'), 'counts');
    const hook = { path: probe, args: ['probe', 'count', counts] };
    b.writeSpec((s) => {
      s.annotations = { 'org.example/big': 'x'.repeat(mb * 1024 * 1024) };
      // createContainer runs in the container's namespaces (its state came through the helper);
      // poststart in the runtime's. startContainer's path would resolve inside the container.
      s.hooks = { createContainer: [hook], poststart: [hook] };
    });
    const c = b.rt.create(b.id, b.dir, { timeoutMs: 120_000 });
    t.equal(c.code, 0, `create (${describe(c)})`);
    const s = b.rt.start(b.id, { timeoutMs: 120_000 });
    t.equal(s.code, 0, `start (${describe(s)})`);
    t.ok(await waitForStatus(b.rt, b.id, 'stopped', 30_000), 'the container ran');
    const lines = fs.readFileSync(counts, 'utf8').trim().split('\n');
    t.equal(lines.length, 2, 'createContainer and poststart each ran once');
    for (const l of lines) {
      const [n, last] = l.split(' ');
      t.ok(Number(n) > mb * 1024 * 1024, `a hook read the whole state (${n} bytes)`);
      t.equal(last, '}', 'which ends as a JSON document does');
    }
    t.equal(b.rt.delete(b.id).code, 0, 'delete');
  });
}
