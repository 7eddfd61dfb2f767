/** docker's variable substitution and word splitting. */
import t from 'tap';
import { keyValues, processWord, processWords, splitRaw } from '../../../../supervisor/build/substitute';

const vars = new Map([['A', 'a'], ['EMPTY', ''], ['SP', 'x y']]);

t.test('$NAME and ${NAME}; unset is empty; a lone $ stays', async (t) => {
  t.equal(processWord('$A-${A}b-$NOPE-$', vars), 'a-ab--$');
  t.equal(processWord('cost $5', vars), 'cost ', 'positional $5 is an (unset) variable, as in docker');
});

t.test('modifiers :- - :+ + :? ?', async (t) => {
  t.equal(processWord('${NOPE:-d} ${EMPTY:-d} ${A:-d}', vars), 'd d a');
  t.equal(processWord('${NOPE-d} ${EMPTY-d}', vars), 'd ');
  t.equal(processWord('${NOPE:+x} ${EMPTY:+x} ${A:+x}', vars), '  x');
  t.equal(processWord('${EMPTY+x} ${NOPE+x}', vars), 'x ');
  t.equal(processWord('${A:-${NOPE:-nested}}', vars), 'a');
  t.equal(processWord('${NOPE:-${A}}', vars), 'a', 'the word is substituted too');
  t.throws(() => processWord('${NOPE:?must be set}', vars), /NOPE: must be set/);
  t.equal(processWord('${EMPTY?x}', vars), '');
  t.throws(() => processWord('${A%x}', vars), /unsupported modifier/);
  t.throws(() => processWord('${A', vars), /missing '}'/);
});

t.test('quotes and escapes', async (t) => {
  t.equal(processWord(`'$A'"$A"\\$A`, vars), '$Aa$A');
  t.equal(processWord('"a\\"b\\n"', vars), 'a"b\\n', 'in double quotes the escape only quotes " $ and itself');
  t.equal(processWord('`$A', vars, '`'), '$A', 'the escape character is a parameter');
  t.throws(() => processWord('"open', vars), /matching double-quote/);
  t.throws(() => processWord("'open", vars), /matching single-quote/);
});

t.test('word splitting: on unquoted blanks, after substitution of quoted parts', async (t) => {
  t.same(processWords('a "b c"  d\\ e ${A}', vars), ['a', 'b c', 'd e', 'a']);
  t.same(processWords('$SP', vars), ['x y'], 'a value is not split again (docker splits words before expanding)');
  t.same(splitRaw('a="x y" b=\'1 2\' c\\ d'), ['a="x y"', "b='1 2'", 'c\\ d']);
});

t.test('KEY=VALUE lists and the legacy one-pair form', async (t) => {
  t.same(keyValues('A=1 B="two words" C=${A}x', vars, '\\', 'ENV'), [['A', '1'], ['B', 'two words'], ['C', 'ax']]);
  t.same(keyValues('KEY the rest  of it', vars, '\\', 'ENV'), [['KEY', 'the rest  of it']]);
  t.throws(() => keyValues('=x', vars, '\\', 'ENV'), /ENV names can not be blank/);
  t.throws(() => keyValues('ONLY', vars, '\\', 'ENV'), /ENV must have two arguments/);
});
