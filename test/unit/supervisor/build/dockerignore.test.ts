/** .dockerignore with docker's rules: globs, **, exceptions, parent directories, cleaning. */
import t from 'tap';
import { isIgnored, parseDockerignore } from '../../../../supervisor/build/dockerignore';

t.test('globs match the whole relative path; parents match their contents', async (t) => {
  const r = parseDockerignore('# comment\n\n*.md\n/tmp\nbuild/*.o\n');
  t.ok(isIgnored(r, 'README.md'));
  t.notOk(isIgnored(r, 'docs/README.md'), '* does not cross /');
  t.ok(isIgnored(r, 'tmp/deep/file'), 'a matched directory takes everything under it');
  t.ok(isIgnored(r, 'build/x.o'));
  t.notOk(isIgnored(r, 'build/sub/x.o'));
  t.notOk(isIgnored(r, 'main.c'));
});

t.test('** matches any number of directories', async (t) => {
  const r = parseDockerignore('**/*.log\nvendor/**\n');
  t.ok(isIgnored(r, 'a.log'));
  t.ok(isIgnored(r, 'x/y/z.log'));
  t.ok(isIgnored(r, 'vendor/a/b'));
  t.notOk(isIgnored(r, 'src/log'));
});

t.test('exceptions: the last matching pattern wins', async (t) => {
  const r = parseDockerignore('secret*\n!secret-keep.txt\ndocs\n!docs/keep.md\n');
  t.ok(isIgnored(r, 'secret.txt'));
  t.notOk(isIgnored(r, 'secret-keep.txt'));
  t.ok(isIgnored(r, 'docs/other.md'));
  t.notOk(isIgnored(r, 'docs/keep.md'));
  const again = parseDockerignore('!a.txt\n*.txt\n');
  t.ok(isIgnored(again, 'a.txt'), 'an exception before a later exclusion loses');
});

t.test('patterns are cleaned: ./, trailing /, character classes and escapes', async (t) => {
  const r = parseDockerignore('./out/\nf[0-9].txt\nlit\\*\n');
  t.ok(isIgnored(r, 'out/a'));
  t.ok(isIgnored(r, 'f1.txt'));
  t.notOk(isIgnored(r, 'fx.txt'));
  t.ok(isIgnored(r, 'lit*'));
  t.notOk(isIgnored(r, 'litx'));
});
