/*
 * Generates native-helpers/plan_ops.h from runtime/plan/ops.ts, so op codes, field layouts,
 * message types and stages are defined once. scripts/gen.ts writes or checks it.
 */
import { CGROUP_JOIN_MODE, HOOK_PHASE, MOUNT_KIND, MSG, MSG_HEADER_BYTES, OP, OP_FIELDS, PIVOT_MODE, PLAN_MAGIC, PLAN_MAX_BYTES, PLAN_VERSION, STAGE, STDIO_INHERIT, SYNC_MAX_BYTES, type FieldKind, type OpName } from '../runtime/plan/ops';

const KIND_C: Record<FieldKind, string> = { u32: 'TH_F_U32', u64: 'TH_F_U64', str: 'TH_F_STR', strlist: 'TH_F_STRLIST', u32list: 'TH_F_U32LIST', bytes: 'TH_F_BYTES' };

/** Render the header text. */
export function renderHeader(): string {
  const out: string[] = [];
  out.push('/* Generated from runtime/plan/ops.ts by scripts/gen-plan-header.ts. Do not edit. */');
  out.push('#ifndef TSRUN_PLAN_OPS_H', '#define TSRUN_PLAN_OPS_H', '');
  out.push(`#define TH_PLAN_VERSION ${PLAN_VERSION}u`);
  out.push(`#define TH_PLAN_MAGIC 0x${PLAN_MAGIC.toString(16)}u`);
  out.push(`#define TH_PLAN_MAX_BYTES ${PLAN_MAX_BYTES}u`);
  out.push(`#define TH_SYNC_MAX_BYTES ${SYNC_MAX_BYTES}u`);
  out.push(`#define TH_MSG_HEADER_BYTES ${MSG_HEADER_BYTES}u`, '');
  out.push('enum th_field_kind { TH_F_U32 = 1, TH_F_U64 = 2, TH_F_STR = 3, TH_F_STRLIST = 4, TH_F_U32LIST = 5, TH_F_BYTES = 6 };', '');
  const names = Object.keys(OP) as OpName[];
  const maxCode = Math.max(...Object.values(OP));
  out.push('enum th_op_code {');
  for (const n of names) out.push(`  TH_OP_${n} = ${OP[n]},`);
  out.push('};');
  out.push(`#define TH_OP_MAX ${maxCode}`);
  let maxFields = 0;
  out.push('');
  for (const n of names) {
    const fields = OP_FIELDS[n] as readonly (readonly [string, FieldKind])[];
    maxFields = Math.max(maxFields, fields.length);
    fields.forEach(([f], i) => out.push(`#define TH_${n}_${f.toUpperCase()} ${i}`));
  }
  out.push(`#define TH_OP_MAX_FIELDS ${Math.max(maxFields, 1)}`, '');
  out.push('/* Field kinds per op code, 0-terminated; unused codes have no entry. */');
  out.push('static const unsigned char th_op_fields[TH_OP_MAX + 1][TH_OP_MAX_FIELDS + 1] = {');
  for (const n of names) {
    const fields = OP_FIELDS[n] as readonly (readonly [string, FieldKind])[];
    out.push(`  [TH_OP_${n}] = {${[...fields.map(([, k]) => KIND_C[k]), '0'].join(', ')}},`);
  }
  out.push('};', '');
  out.push('/* Which op codes exist (1) and which do not (0). */');
  out.push('static const unsigned char th_op_known[TH_OP_MAX + 1] = {');
  for (const n of names) out.push(`  [TH_OP_${n}] = 1,`);
  out.push('};', '');
  out.push('/* Field names per op, in wire order, for decoder messages. */');
  out.push('static const char *const th_field_names[TH_OP_MAX + 1][TH_OP_MAX_FIELDS] = {');
  for (const n of names) {
    const fields = OP_FIELDS[n] as readonly (readonly [string, FieldKind])[];
    if (fields.length > 0) out.push(`  [TH_OP_${n}] = {${fields.map(([f]) => `"${f}"`).join(', ')}},`);
  }
  out.push('};', '');
  out.push('static const char *const th_op_names[TH_OP_MAX + 1] = {');
  for (const n of names) out.push(`  [TH_OP_${n}] = "${n.toLowerCase().replace(/_/g, '-')}",`);
  out.push('};', '');
  const group = (prefix: string, obj: Record<string, number>) => {
    out.push(`enum th_${prefix.toLowerCase()} {`);
    for (const [k, v] of Object.entries(obj)) out.push(`  TH_${prefix}_${k} = ${v},`);
    out.push('};', '');
  };
  group('MOUNT_KIND', MOUNT_KIND);
  group('PIVOT', PIVOT_MODE);
  group('CGROUP_JOIN_MODE', CGROUP_JOIN_MODE);
  group('HOOK', HOOK_PHASE);
  group('MSG', MSG);
  group('STAGE', STAGE);
  out.push('/* A STDIO field that keeps the inherited fd. */', `#define TH_STDIO_INHERIT 0x${STDIO_INHERIT.toString(16)}u`, '');
  out.push('#endif', '');
  return out.join('\n');
}

