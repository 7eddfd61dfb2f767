/*
 * Plan → bytes, in the format ops.ts draws. The encoder is the only writer of that format; the C
 * decoder (native-helpers/plan.c) is the only reader.
 */
import { TsrunError } from '../../spec/errors';
import { OP, OP_FIELDS, PLAN_MAGIC, PLAN_MAX_BYTES, type FieldKind, type OpName } from './ops';
import type { Plan, PlanOp } from './types';

/** Serialise a plan to the bytes the C helper decodes. */
export function encodePlan(plan: Plan): Buffer {
  const chunks: Buffer[] = [];
  for (const op of plan.ops) chunks.push(encodeOp(op));
  const header = Buffer.alloc(16);
  const total = 16 + chunks.reduce((n, c) => n + c.length, 0);
  header.writeUInt32LE(PLAN_MAGIC, 0);
  header.writeUInt32LE(plan.version, 4);
  header.writeUInt32LE(plan.ops.length, 8);
  header.writeUInt32LE(total, 12);
  if (total > PLAN_MAX_BYTES) {
    throw new TsrunError('InvalidArgument', `encode plan: ${total} bytes is over the ${PLAN_MAX_BYTES}-byte limit`);
  }
  return Buffer.concat([header, ...chunks], total);
}

function encodeOp(op: PlanOp): Buffer {
  const name: OpName = op.op;
  const parts: Buffer[] = [];
  const record = op as unknown as Record<string, unknown>;
  for (const [field, kind] of OP_FIELDS[name] as readonly (readonly [string, FieldKind])[]) {
    parts.push(encodeField(name, field, kind, record[field]));
  }
  const payload = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.writeUInt16LE(OP[name], 0);
  head.writeUInt16LE(0, 2);
  head.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

function encodeField(op: string, field: string, kind: FieldKind, value: unknown): Buffer {
  const where = `${op}.${field}`;
  switch (kind) {
    case 'u32':
      return u32(where, value);
    case 'u64': {
      if (typeof value !== 'bigint' || value < 0n || value > 0xffffffffffffffffn) throw bad(where, value);
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(value, 0);
      return b;
    }
    case 'str':
      return str(where, value);
    case 'strlist': {
      if (!Array.isArray(value)) throw bad(where, value);
      return Buffer.concat([u32(where, value.length), ...value.map((s: unknown) => str(where, s))]);
    }
    case 'u32list': {
      if (!Array.isArray(value)) throw bad(where, value);
      return Buffer.concat([u32(where, value.length), ...value.map((n: unknown) => u32(where, n))]);
    }
    case 'bytes': {
      if (!(value instanceof Uint8Array)) throw bad(where, value);
      return Buffer.concat([u32(where, value.length), Buffer.from(value)]);
    }
    default: {
      const never: never = kind;
      throw bad(where, never);
    }
  }
}

function u32(where: string, value: unknown): Buffer {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) throw bad(where, value);
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value, 0);
  return b;
}

function str(where: string, value: unknown): Buffer {
  if (typeof value !== 'string') throw bad(where, value);
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.includes(0)) {
    throw new TsrunError('InvalidArgument', `encode plan: ${where} ${JSON.stringify(value)} contains a NUL byte`);
  }
  const b = Buffer.alloc(4 + bytes.length + 1);
  b.writeUInt32LE(bytes.length, 0);
  bytes.copy(b, 4);
  return b;
}

function bad(where: string, value: unknown): TsrunError {
  return new TsrunError('Internal', `encode plan: ${where} has a value of the wrong kind: ${String(value)}`);
}
