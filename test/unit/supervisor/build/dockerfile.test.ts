/** The Dockerfile parser: directives, comments, continuations, JSON vs shell forms, flags, ONBUILD, errors by line. */
import t from 'tap';
import { jsonArray, parseDockerfile } from '../../../../supervisor/build/dockerfile';

t.test('instructions, line numbers, case, comments and blank lines', async (t) => {
  const df = parseDockerfile('# comment\nfrom busybox AS b\n\n  # indented comment\nRun echo hi\nCMD ["a", "b"]\n');
  t.same(df.instructions.map((i) => [i.cmd, i.args, i.line]), [
    ['FROM', 'busybox AS b', 2],
    ['RUN', 'echo hi', 5],
    ['CMD', '["a", "b"]', 6],
  ]);
  t.same(df.instructions[2]!.json, ['a', 'b'], 'JSON form');
  t.equal(df.instructions[1]!.json, undefined, 'shell form');
  t.equal(df.escape, '\\');
});

t.test('continuations join lines, skipping comments and blank lines inside', async (t) => {
  const df = parseDockerfile('RUN a \\\n  b \\\n# inner comment\n\n  c\nENV X=1\n');
  t.equal(df.instructions[0]!.args, 'a   b   c');
  t.equal(df.instructions[0]!.line, 1, 'named by its first line');
  t.equal(df.instructions[1]!.line, 6);
});

t.test('# escape=` changes the continuation character; directives only at the top', async (t) => {
  const df = parseDockerfile('# escape=`\nRUN dir c:\\ `\n  && echo x\n');
  t.equal(df.escape, '`');
  t.equal(df.instructions[0]!.args, 'dir c:\\   && echo x');
  const late = parseDockerfile('FROM x\n# escape=`\nRUN a `\n');
  t.equal(late.escape, '\\', 'a directive after an instruction is a comment');
  t.throws(() => parseDockerfile('# escape=x\nFROM a\n'), /Dockerfile line 1: invalid escape token/);
  t.throws(() => parseDockerfile('# escape=`\n# escape=\\\nFROM a\n'), /only one escape parser directive/);
});

t.test('flags of COPY/ADD/FROM/RUN; not of others', async (t) => {
  const [c] = parseDockerfile('COPY --from=build --chown=1:2 a b /c/\n').instructions;
  t.same([...c!.flags], [['from', 'build'], ['chown', '1:2']]);
  t.equal(c!.args, 'a b /c/');
  const [e] = parseDockerfile('ENV --x=1\n').instructions;
  t.equal(e!.args, '--x=1', 'ENV takes no flags');
  t.throws(() => parseDockerfile('COPY --from a b\n'), /Dockerfile line 1: COPY flag --from needs a value/);
});

t.test('ONBUILD holds a parsed instruction; bad triggers and unknown instructions are refused by line', async (t) => {
  const [o] = parseDockerfile('ONBUILD RUN echo hi\n').instructions;
  t.equal(o!.inner?.cmd, 'RUN');
  t.throws(() => parseDockerfile('ONBUILD FROM x\n'), /FROM isn't allowed as an ONBUILD trigger/);
  t.throws(() => parseDockerfile('ONBUILD ONBUILD RUN x\n'), /ONBUILD ONBUILD is not allowed/);
  t.throws(() => parseDockerfile('FROM x\n\nFROBNICATE y\n'), /^Dockerfile line 3: unknown instruction: FROBNICATE$/);
});

t.test('jsonArray: only arrays of strings', async (t) => {
  t.same(jsonArray(' ["a","b c"] '), ['a', 'b c']);
  t.equal(jsonArray('[1, 2]'), undefined);
  t.equal(jsonArray('[not json'), undefined);
  t.equal(jsonArray('echo [x]'), undefined);
});
