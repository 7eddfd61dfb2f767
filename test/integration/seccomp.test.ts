/**
 * linux.seccomp compiled with libseccomp in the runtime and installed by init: docker's default
 * profile as docker sends it (no_new_privs off, so the filter must go in before capabilities
 * drop), and a small profile with no_new_privs on (installed last, just before exec).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { fact, parseFacts } from '../helpers/facts';
import { requires } from '../helpers/requires';
import { describe } from '../helpers/runtime';

const dockerProfile = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/seccomp/docker-default.json'), 'utf8')) as unknown;

t.test("docker's default profile, no_new_privs off", async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', [
      'echo "@@seccomp $(grep ^Seccomp: /proc/self/status | cut -f2)"',
      'unshare -U true 2>/dev/null && echo "@@unshare allowed" || echo "@@unshare denied"',
      'echo "@@work $(echo ok)"',
    ].join('; ')],
    patch: (s) => {
      s.process.noNewPrivileges = false;
      (s.linux as typeof s.linux & Record<string, unknown>)['seccomp'] = dockerProfile;
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'seccomp'), '2', 'a seccomp filter is active in init (mode 2)');
  t.equal(fact(f, 'unshare'), 'denied', 'unshare of a user namespace is refused by the profile');
  t.equal(fact(f, 'work'), 'ok', 'ordinary work still runs');
});

t.test('an errno rule with no_new_privs on', async (t) => {
  if (!requires(t, 'root', 'busybox')) return;
  const b = makeBundle(t, {
    args: ['sh', '-c', 'mkdir /tmp/d 2>/dev/null && echo "@@mkdir ok" || echo "@@mkdir denied"; echo "@@nnp $(grep ^NoNewPrivs: /proc/self/status | cut -f2)"'],
    patch: (s) => {
      s.process.noNewPrivileges = true;
      (s.linux as typeof s.linux & Record<string, unknown>)['seccomp'] = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
      };
    },
  });
  const r = b.rt.run(b.id, b.dir);
  t.equal(r.code, 0, `run exits 0 (${describe(r)})`);
  const f = parseFacts(r.stdout);
  t.equal(fact(f, 'mkdir'), 'denied', 'mkdir fails with the rule\'s errno');
  t.equal(fact(f, 'nnp'), '1', 'no_new_privs is set');
});
