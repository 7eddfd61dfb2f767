/*
 * The public API of spec/: OCI runtime-spec 1.2 types and schemas, parsing, named semantic
 * checks, mount option classification and the default config. Nothing here does I/O.
 *
 *   text ──parseSpec──▶ Spec ──validateSpec──▶ (checked) Spec ──▶ runtime/plan
 */
export * from './schema';
export * from './schema-linux';
export { parseSpec, parseProcess, parseResources, checkSpecValue } from './parse';
export {
  validateSpec,
  validateProcess,
  findSpecProblem,
  runSpecCheck,
  SPEC_CHECKS,
  PROCESS_CHECK_NAMES,
  type SpecCheckName,
  type SpecProblem,
  type ValidateContext,
} from './validate';
export type { ProcessCheckName } from './validate-process';
export * from './mount-options';
export { defaultSpec, OCI_VERSION, type DefaultSpecOptions } from './default';
export * from './names';
export { toU64, toI64, U64_MAX_AS_NUMBER, I64_MAX_AS_NUMBER } from './numbers';
export type { Known } from './known';
