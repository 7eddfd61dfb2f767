import t from 'tap';
import { z } from 'zod';
import { describeIssue } from '../../../spec/issue-text';
import { u32 } from '../../../spec/numbers';

t.test('invalid_type names what the schema wanted', async (t) => {
  const typeIssue = (inst: z.ZodType | undefined, input: unknown) => describeIssue({ code: 'invalid_type', expected: 'string', input, ...(inst ? { inst } : {}) });
  t.equal(typeIssue(z.string(), 5), 'expected string, got number');
  t.equal(typeIssue(z.string().optional(), 5), 'expected string, got number', 'optional is seen through');
  t.equal(typeIssue(z.boolean().default(false), 'x'), 'expected boolean, got string', 'default is seen through');
  t.equal(typeIssue(z.array(u32()), {}), 'expected array of uint32s, got object');
  t.equal(typeIssue(z.array(z.array(z.string())), 1), 'expected array of array of strings, got number');
  t.equal(typeIssue(z.record(z.string(), z.looseObject({})), 1), 'expected object of objects, got number');
  t.equal(typeIssue(z.enum(['a']), undefined), 'missing, expected string');
  t.equal(typeIssue(undefined, 1), 'expected value, got number', 'no schema to describe');
});

t.test('invalid_value lists the choices', async (t) => {
  t.equal(describeIssue({ code: 'invalid_value', values: ['a', 'b'], input: 'c' }), 'expected one of "a", "b", got "c"');
  t.equal(describeIssue({ code: 'invalid_value', values: ['a'], input: undefined }), 'missing, expected one of "a"');
});

t.test('other issues keep zod\'s words', async (t) => {
  t.equal(describeIssue({ code: 'too_big', origin: 'number', maximum: 1, inclusive: true, input: 2 }), undefined);
});
