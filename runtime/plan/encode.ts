/*
 * Plan → bytes, in the format ops.ts draws. The encoder is the only writer of that format; the C
 * decoder (native-helpers/plan.c) is the only reader.
 *
 * One growing buffer, lengths patched in place: a plan has hundreds of small fields, and a
 * Buffer per field (then concatenated per op and per plan) cost about 2 ms of every create.
 */
import { TsrunError } from '../../spec/errors';
import { OP, OP_FIELDS, PLAN_MAGIC, PLAN_MAX_BYTES, type FieldKind, type OpName } from './ops';
import type { Plan, PlanOp } from './types';

/** Serialise a plan to the bytes the C helper decodes. */
export function encodePlan(plan: Plan): Buffer {
  const w = new Writer();
  w.u32('header', PLAN_MAGIC);
  w.u32('header', plan.version);
  w.u32('header', plan.ops.length);
  w.u32('header', 0); // total_len, patched below
  for (const op of plan.ops) encodeOp(w, op);
  const total = w.off;
  if (total > PLAN_MAX_BYTES) {
    throw new TsrunError('InvalidArgument', `encode plan: ${total} bytes is over the ${PLAN_MAX_BYTES}-byte limit`);
  }
  w.buf.writeUInt32LE(total, 12);
  return w.buf.subarray(0, total);
}

function encodeOp(w: Writer, op: PlanOp): void {
  const name: OpName = op.op;
  const record = op as unknown as Record<string, unknown>;
  w.ensure(8);
  w.buf.writeUInt16LE(OP[name], w.off);
  w.buf.writeUInt16LE(0, w.off + 2);
  const lengthAt = w.off + 4;
  w.off += 8;
  const start = w.off;
  for (const [field, kind] of OP_FIELDS[name] as readonly (readonly [string, FieldKind])[]) {
    encodeField(w, `${name}.${field}`, kind, record[field]);
  }
  w.buf.writeUInt32LE(w.off - start, lengthAt);
}

function encodeField(w: Writer, where: string, kind: FieldKind, value: unknown): void {
  switch (kind) {
    case 'u32':
      w.u32(where, value);
      return;
    case 'u64':
      if (typeof value !== 'bigint' || value < 0n || value > 0xffffffffffffffffn) throw bad(where, value);
      w.ensure(8);
      w.buf.writeBigUInt64LE(value, w.off);
      w.off += 8;
      return;
    case 'str':
      w.str(where, value);
      return;
    case 'strlist':
      if (!Array.isArray(value)) throw bad(where, value);
      w.u32(where, value.length);
      for (const s of value as unknown[]) w.str(where, s);
      return;
    case 'u32list':
      if (!Array.isArray(value)) throw bad(where, value);
      w.u32(where, value.length);
      for (const n of value as unknown[]) w.u32(where, n);
      return;
    case 'bytes':
      if (!(value instanceof Uint8Array)) throw bad(where, value);
      w.u32(where, value.length);
      w.ensure(value.length);
      w.buf.set(value, w.off);
      w.off += value.length;
      return;
    default: {
      const never: never = kind;
      throw bad(where, never);
    }
  }
}

/** An append-only little-endian writer over a buffer that doubles when full. */
class Writer {
  buf = Buffer.allocUnsafe(16 * 1024);
  off = 0;

  ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  u32(where: string, value: unknown): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) throw bad(where, value);
    this.ensure(4);
    this.buf.writeUInt32LE(value, this.off);
    this.off += 4;
  }

  /** len:u32, the UTF-8 bytes, a NUL. */
  str(where: string, value: unknown): void {
    if (typeof value !== 'string') throw bad(where, value);
    if (value.includes('\0')) {
      throw new TsrunError('InvalidArgument', `encode plan: ${where} ${JSON.stringify(value)} contains a NUL byte`);
    }
    const len = Buffer.byteLength(value, 'utf8');
    this.ensure(4 + len + 1);
    this.buf.writeUInt32LE(len, this.off);
    this.buf.write(value, this.off + 4, len, 'utf8');
    this.buf[this.off + 4 + len] = 0;
    this.off += 4 + len + 1;
  }
}

function bad(where: string, value: unknown): TsrunError {
  return new TsrunError('Internal', `encode plan: ${where} has a value of the wrong kind: ${String(value)}`);
}
