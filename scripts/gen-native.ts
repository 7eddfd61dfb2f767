/*
 * Renders the files that bind the C helper's exports from runtime/native/exports.ts: the C
 * header, the addon's dispatch table and the TS interface. scripts/gen.ts writes or checks them.
 */
import { NATIVE_ABI, NATIVE_EXPORTS, NATIVE_MAX_ARGS, cPrototype, type ArgKind, type NativeArg, type NativeExport } from '../runtime/native/exports';

const GENERATED = 'Generated from runtime/native/exports.ts by scripts/gen-native.ts. Do not edit; run `make gen`.';

/** Wrap text to lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

function checkTable(table: readonly NativeExport[]): void {
  const seen = new Set<string>();
  for (const e of table) {
    if (seen.has(e.name) || seen.has(e.c)) throw new Error(`exports.ts: ${e.name} (${e.c}) is listed twice`);
    seen.add(e.name).add(e.c);
    if (e.args.length > NATIVE_MAX_ARGS) throw new Error(`exports.ts: ${e.name} takes more than ${NATIVE_MAX_ARGS} arguments`);
    for (const a of e.args) {
      if (a.kind === 'in' || a.kind === 'out') {
        const len = a.len === undefined ? undefined : e.args.find((b) => b.name === a.len);
        if (a.len !== undefined && len?.kind !== 'u32') throw new Error(`exports.ts: ${e.name}: ${a.name}'s length ${a.len} is not a u32 argument`);
        if (a.len === undefined && (a.kind === 'in' || a.bytes === undefined)) throw new Error(`exports.ts: ${e.name}: ${a.name} needs a length`);
      }
    }
  }
}

/** native-helpers/tsrun.h */
export function renderHeader(table: readonly NativeExport[] = NATIVE_EXPORTS, abi = NATIVE_ABI): string {
  checkTable(table);
  const out = [
    `/* ${GENERATED} */`,
    '/*',
    ' * The C helper\'s exported API: what build/tsrun.node (native-helpers/addon.c) calls. Every',
    ' * function returns -errno on failure; none of them print.',
    ' */',
    '#ifndef TSRUN_H',
    '#define TSRUN_H',
    '',
    '#include <stdint.h>',
    '',
    `#define TSRUN_ABI_VERSION 0x${abi.toString(16)}`,
    '#define TSRUN_EXPORT __attribute__((visibility("default")))',
    '',
  ];
  for (const e of table) {
    out.push('/*', ...wrap(e.doc, 96).map((l) => ` * ${l}`), ' */', `TSRUN_EXPORT ${cPrototype(e)};`);
  }
  out.push('', '#endif', '');
  return out.join('\n');
}

const KIND_C: Record<ArgKind, string> = { i32: 'TH_A_I32', u32: 'TH_A_U32', u64: 'TH_A_U64', str: 'TH_A_STR', in: 'TH_A_IN', out: 'TH_A_OUT' };
const VAL_C: Record<ArgKind, string> = { i32: 'i32', u32: 'u32', u64: 'u64', str: 's', in: 'p', out: 'p' };

/** native-helpers/addon_exports.h: one trampoline and one argument table per export. */
export function renderAddonTable(table: readonly NativeExport[] = NATIVE_EXPORTS): string {
  checkTable(table);
  const out = [`/* ${GENERATED} */`, '/* Included by addon.c only: th_val, th_arg and th_export are defined there. */', ''];
  for (const e of table) {
    out.push(`static int th_call_${e.name}(const th_val *v) {`);
    out.push(`  ${e.args.length === 0 ? '(void)v;\n  ' : ''}return ${e.c}(${e.args.map((a, i) => `v[${i}].${VAL_C[a.kind]}`).join(', ')});`);
    out.push('}');
    if (e.args.length > 0) {
      const rows = e.args.map((a: NativeArg) => {
        const len = a.len === undefined ? -1 : e.args.findIndex((b) => b.name === a.len);
        return `{"${a.name}", ${KIND_C[a.kind]}, ${len}, ${a.bytes ?? 0}}`;
      });
      out.push(`static const th_arg th_args_${e.name}[] = {${rows.join(', ')}};`);
    }
    out.push('');
  }
  out.push(`#define TH_N_EXPORTS ${table.length}`);
  out.push('static const th_export th_exports[TH_N_EXPORTS] = {');
  for (const e of table) {
    out.push(`    {"${e.name}", th_call_${e.name}, ${e.args.length}, ${e.args.length === 0 ? 'NULL' : `th_args_${e.name}`}, ${e.async ? 1 : 0}},`);
  }
  out.push('};', '');
  return out.join('\n');
}

const KIND_TS: Record<ArgKind, string> = { i32: 'number', u32: 'number', u64: 'bigint', str: 'string', in: 'Uint8Array', out: 'Uint8Array' };

function camel(s: string): string {
  return s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function tsType(a: NativeArg): string {
  return a.kind === 'out' && a.ctype.startsWith('int32_t') ? 'Int32Array' : KIND_TS[a.kind];
}

/** runtime/native/native-lib.ts */
export function renderInterface(table: readonly NativeExport[] = NATIVE_EXPORTS): string {
  checkTable(table);
  const out = [
    `// ${GENERATED}`,
    '',
    '/** The addon\'s functions (native-helpers/tsrun.h with JS arguments); index.ts wraps them. */',
    'export interface NativeLib {',
  ];
  for (const e of table) {
    const params = e.args.map((a) => `${camel(a.name)}: ${tsType(a)}`);
    out.push(`  /** ${e.c}: ${e.doc} */`, `  ${e.name}(${params.join(', ')}): number;`);
    if (e.async) {
      out.push(`  /** ${e.c} on a libuv pool thread; done(null, rc) on the main thread, after the out buffers are filled. */`);
      out.push(`  ${e.name}Async(${[...params, 'done: (err: Error | null, rc: number) => void'].join(', ')}): void;`);
    }
  }
  out.push('}', '');
  out.push('/** Every function name NativeLib has, for the loader\'s check. */');
  out.push(`export const NATIVE_LIB_FUNCTIONS: readonly (keyof NativeLib)[] = [${table.flatMap((e) => (e.async ? [e.name, `${e.name}Async`] : [e.name])).map((n) => `'${n}'`).join(', ')}];`, '');
  return out.join('\n');
}

/** Every file the exports table generates, by path in the repository. */
export function renderNativeFiles(): Record<string, string> {
  return {
    'native-helpers/tsrun.h': renderHeader(),
    'native-helpers/addon_exports.h': renderAddonTable(),
    'runtime/native/native-lib.ts': renderInterface(),
  };
}
