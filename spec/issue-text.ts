/*
 * The words of schema errors: zod issues rewritten as "expected <type>, got <kind>",
 * "missing, expected <type>" or "expected one of "a", "b", got "c"".
 */
import { z } from 'zod';
import { expectedGot, quote } from './describe';
import { integerLabel } from './numbers';

/** The per-parse zod error map: "expected <type>, got <kind>" in the project's wording. */
export function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return expectedGot(expectedOf(issue.inst), issue.input);
    case 'invalid_value': {
      const expected = `one of ${issue.values.map((v) => quote(v)).join(', ')}`;
      return issue.input === undefined ? `missing, expected ${expected}` : `expected ${expected}, got ${quote(issue.input)}`;
    }
    // The schemas raise no other kinds today; zod's own words will do for a new one.
    default:
      return undefined;
  }
}

/** What a schema accepts, in words: "string", "array of strings", "object of strings", … */
function expectedOf(schema: unknown): string {
  // zod sets `inst` on every invalid_type issue; this guards a change in zod.
  if (!(schema instanceof z.ZodType)) return 'value';
  const label = integerLabel(schema);
  if (label !== undefined) return label;
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault) return expectedOf(schema.unwrap());
  if (schema instanceof z.ZodArray) return `array of ${plural(expectedOf(schema.element))}`;
  if (schema instanceof z.ZodRecord) return `object of ${plural(expectedOf(schema.valueType))}`;
  if (schema instanceof z.ZodEnum) return 'string';
  if (schema instanceof z.ZodObject) return 'object';
  return schema.def.type;
}

function plural(noun: string): string {
  return noun.endsWith('s') ? noun : `${noun}s`;
}
