/** tsctl's image names: docker's short forms to containerd names and back. */
import t from 'tap';
import { dockerName, fullName } from '../../../../supervisor/tsctl/commands/images';

t.test('fullName expands as docker does', async (t) => {
  t.equal(fullName('busybox'), 'docker.io/library/busybox:latest');
  t.equal(fullName('busybox:1.36'), 'docker.io/library/busybox:1.36');
  t.equal(fullName('me/app'), 'docker.io/me/app:latest');
  t.equal(fullName('localhost:5000/app'), 'localhost:5000/app:latest');
  t.equal(fullName('registry.example/app:v1'), 'registry.example/app:v1');
  t.equal(fullName('quay.io/x/y@sha256:abc'), 'quay.io/x/y@sha256:abc');
});

t.test('dockerName shortens docker.io names and splits the tag', async (t) => {
  t.same(dockerName('docker.io/library/busybox:latest'), ['busybox', 'latest']);
  t.same(dockerName('docker.io/me/app:v2'), ['me/app', 'v2']);
  t.same(dockerName('localhost:5000/app:v1'), ['localhost:5000/app', 'v1']);
  t.same(dockerName('localhost:5000/app'), ['localhost:5000/app', '<none>']);
});
