/*
 * Text → typed spec documents. JSON syntax errors and schema errors both become one
 * InvalidArgument TsrunError naming the file and, for schema errors, the JSON path of up to three
 * failing fields, e.g. `invalid /b/config.json: process.args: expected array of strings, got number`.
 *
 * `null` is read as "absent" for object members: Go's encoding/json does the same for pointers,
 * slices and maps, and engines built on it emit `null` for nil slices without `omitempty`.
 */
import { z } from 'zod';
import { TsrunError } from './errors';
import { formatPath } from './describe';
import { findJsonSyntaxError } from './json-error';
import { describeIssue } from './issue-text';
import { ProcessSchema, SpecSchema, type Process, type Spec } from './schema';
import { LinuxResourcesSchema, type LinuxResources } from './schema-linux';

const MAX_ISSUES = 3;

/** Parse config.json text; `where` is the file path used in messages. */
export function parseSpec(text: string, where: string): Spec {
  return parseDocument(SpecSchema, text, where);
}

/** Parse the process.json of `exec --process`; `where` is the file path used in messages. */
export function parseProcess(text: string, where: string): Process {
  return parseDocument(ProcessSchema, text, where);
}

/** Parse the resources JSON of `update --resources`; `where` names the source ("stdin" or a path). */
export function parseResources(text: string, where: string): LinuxResources {
  return parseDocument(LinuxResourcesSchema, text, where);
}

/** Check an already-decoded value against the config.json schema (e.g. a spec built in code). */
export function checkSpecValue(value: unknown, where: string): Spec {
  return checkValue(SpecSchema, value, where);
}

function parseDocument<S extends z.ZodType>(schema: S, text: string, where: string): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TsrunError('InvalidArgument', `parse ${where}: ${jsonSyntaxReason(err, text)}`, { cause: err });
  }
  return checkValue(schema, value, where);
}

function checkValue<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  let input: unknown;
  try {
    input = withoutNulls(value);
  } catch (err) {
    // A stack overflow: JSON.parse takes any depth, a recursive walk does not.
    throw new TsrunError('InvalidArgument', `invalid ${where}: nested too deeply`, { cause: err });
  }
  const result = schema.safeParse(input, { error: describeIssue });
  if (result.success) return result.data;
  const issues = result.error.issues;
  const shown = issues.slice(0, MAX_ISSUES).map((issue) => {
    const path = formatPath(issue.path);
    return path === '' ? issue.message : `${path}: ${issue.message}`;
  });
  const more = issues.length > MAX_ISSUES ? ` (and ${issues.length - MAX_ISSUES} more)` : '';
  throw new TsrunError('InvalidArgument', `invalid ${where}: ${shown.join('; ')}${more}`, { cause: result.error });
}

/** Why the text is not JSON, as one lower-case line with the line and column. */
function jsonSyntaxReason(err: unknown, text: string): string {
  const found = findJsonSyntaxError(text);
  if (found !== undefined) return `${found.reason} at line ${found.line} column ${found.column}`;
  // The scanner gave up (see json-error.ts): fall back to V8's own words, first line only.
  const message = String(err)
    .replace(/^SyntaxError: /, '')
    .split('\n', 1)
    .join('');
  return message.charAt(0).toLowerCase() + message.slice(1);
}

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== null) out[key] = withoutNulls(v);
  return out;
}
