/*
 * Integer schemas for the fixed-width integers of the runtime spec, and conversions for the
 * 64-bit ones.
 *
 * config.json is read with JSON.parse, so every number is an IEEE double. Integers above 2^53
 * lose precision: 18446744073709551615 (u64 max, e.g. RLIM_INFINITY) arrives as 2^64 and
 * 9223372036854775807 (i64 max) as 2^63. The schemas therefore accept u64 values up to 2^64 and
 * i64 values up to 2^63 inclusive, and `toU64` / `toI64` clamp those back to the real maxima.
 * Any u64 or i64 field that reaches a syscall or a cgroup file must go through them.
 */
import { z } from 'zod';
import { expectedGot } from './describe';

/** 2^64: what the u64 maximum 18446744073709551615 becomes after JSON.parse. */
export const U64_MAX_AS_NUMBER = 2 ** 64;

/** 2^63: what the i64 maximum 9223372036854775807 becomes after JSON.parse. */
export const I64_MAX_AS_NUMBER = 2 ** 63;

const U64_MAX = (1n << 64n) - 1n;
const I64_MAX = (1n << 63n) - 1n;

const labels = new WeakMap<object, string>();

function integer(label: string, min: number, max: number): z.ZodNumber {
  const schema = z
    .number({ error: (iss) => expectedGot(label, iss.input) })
    .refine((n) => Number.isInteger(n) && n >= min && n <= max, {
      error: (iss) => `expected ${label}, got ${String(iss.input)}`,
    });
  labels.set(schema, label);
  return schema;
}

/** A uint64 field; see the file comment for the precision limit. */
export const u64 = (): z.ZodNumber => integer('uint64', 0, U64_MAX_AS_NUMBER);
/** An int64 field; see the file comment for the precision limit. */
export const i64 = (): z.ZodNumber => integer('int64', -I64_MAX_AS_NUMBER, I64_MAX_AS_NUMBER);
/** A uint32 field. */
export const u32 = (): z.ZodNumber => integer('uint32', 0, 2 ** 32 - 1);
/** An int32 field. */
export const i32 = (): z.ZodNumber => integer('int32', -(2 ** 31), 2 ** 31 - 1);
/** A uint16 field. */
export const u16 = (): z.ZodNumber => integer('uint16', 0, 2 ** 16 - 1);

/** The label ("uint64", "int32", …) of a schema made here, for error messages. */
export function integerLabel(schema: object): string | undefined {
  return labels.get(schema);
}

/** Convert a parsed uint64 field to a bigint, mapping 2^64 (the parsed u64 max) to 2^64-1. */
export function toU64(n: number): bigint {
  const v = BigInt(n);
  return v > U64_MAX ? U64_MAX : v;
}

/** Convert a parsed int64 field to a bigint, mapping 2^63 (the parsed i64 max) to 2^63-1. */
export function toI64(n: number): bigint {
  const v = BigInt(n);
  return v > I64_MAX ? I64_MAX : v;
}
