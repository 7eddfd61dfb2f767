import t from 'tap';
import { findJsonSyntaxError } from '../../../spec/json-error';

t.test('valid JSON has no error, and agrees with JSON.parse', async (t) => {
  const valid = ['{}', '[]', ' {"a": [1, -2.5e+3, 0, 0.5E-1, true, false, null, "x\\n\\u00e9\\"\\\\\\/\\b\\f\\r\\t"], "b": {}} ', '"s"', '12', '-0', '[[]]', '{"a":{"b":[{}]}}'];
  for (const text of valid) {
    t.doesNotThrow(() => JSON.parse(text), `JSON.parse accepts ${text}`);
    t.equal(findJsonSyntaxError(text), undefined, text);
  }
});

t.test('each kind of error is found and placed', async (t) => {
  const cases: readonly [string, string, number, number][] = [
    ['', 'unexpected end of input', 1, 1],
    ['   ', 'unexpected end of input', 1, 4],
    ['{', 'unexpected end of input, expected a property name in double quotes', 1, 2],
    ['{"a"', 'unexpected end of input, expected ":"', 1, 5],
    ['{"a" 1}', 'unexpected character "1", expected ":"', 1, 6],
    ['{"a":1', 'unexpected end of input, expected "," or "}"', 1, 7],
    ['{"a":1 "b":2}', 'unexpected character "\\"", expected "," or "}"', 1, 8],
    ['{a:1}', 'unexpected character "a", expected a property name in double quotes', 1, 2],
    ['[1,]', 'unexpected character "]", expected a value', 1, 4],
    ['[1 2]', 'unexpected character "2", expected "," or "]"', 1, 4],
    ['[', 'unexpected end of input', 1, 2],
    ['{"a":}', 'unexpected character "}", expected a value', 1, 6],
    ['tru', 'unexpected end of input', 1, 4],
    ['nul!', 'unexpected character "!"', 1, 4],
    ['fals', 'unexpected end of input', 1, 5],
    ['"abc', 'unterminated string', 1, 1],
    ['"a\\x"', 'invalid escape in string', 1, 3],
    ['"a\\', 'invalid escape in string', 1, 3],
    ['"\\u12g4"', 'invalid \\u escape in string', 1, 2],
    ['"a\tb"', 'control character in string', 1, 3],
    ['01', 'unexpected character "1" after the end of the document', 1, 2],
    ['-', 'unexpected end of input', 1, 2],
    ['-a', 'invalid number', 1, 2],
    ['1.', 'unexpected end of input', 1, 3],
    ['1.e5', 'invalid number', 1, 3],
    ['1e', 'unexpected end of input', 1, 3],
    ['1e+', 'unexpected end of input', 1, 4],
    ['{}\n{}', 'unexpected character "{" after the end of the document', 2, 1],
    ["{'a': 1}", 'unexpected character "\'", expected a property name in double quotes', 1, 2],
    ['{\n  "a": 1,\n  "b": [1, 2,,]\n}', 'unexpected character ",", expected a value', 3, 14],
    ['\u00a0{}', 'unexpected character "\u00a0", expected a value', 1, 1],
  ];
  for (const [text, reason, line, column] of cases) {
    t.throws(() => JSON.parse(text), SyntaxError, `JSON.parse refuses ${JSON.stringify(text)}`);
    t.same(findJsonSyntaxError(text), { reason, line, column }, JSON.stringify(text));
  }
});
