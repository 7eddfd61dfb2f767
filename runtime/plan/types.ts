/*
 * The plan as data: a list of ops whose fields are typed from OP_FIELDS in ops.ts, so an op added
 * there shows up here and in the encoder with no hand-written duplicate.
 */
import type { FieldKind, OpName } from './ops';
import { OP_FIELDS } from './ops';

type KindType<K extends FieldKind> = K extends 'u32'
  ? number
  : K extends 'u64'
    ? bigint
    : K extends 'str'
      ? string
      : K extends 'strlist'
        ? readonly string[]
        : K extends 'u32list'
          ? readonly number[]
          : K extends 'bytes'
            ? Uint8Array
            : never;

type FieldsOf<N extends OpName> = {
  readonly [F in (typeof OP_FIELDS)[N][number] as F[0]]: KindType<F[1]>;
};

/** One op of a plan: its name plus its fields. */
export type PlanOp = { [N in OpName]: { readonly op: N } & FieldsOf<N> }[OpName];

/** One op of a given name. */
export type PlanOpOf<N extends OpName> = Extract<PlanOp, { op: N }>;

/** What the runtime hands the C helper: ordered ops plus the format version. */
export interface Plan {
  readonly version: number;
  readonly ops: readonly PlanOp[];
}
