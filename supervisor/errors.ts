/*
 * containerd's error messages (docs/containerd-api.md §7), made once here so every service words them
 * the same. Core code throws TsrunError; services/ maps the code to a gRPC status.
 */
import { TsrunError } from '../spec/errors';

const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$/;
const MAX_IDENTIFIER = 76;

/** Why `s` is not a valid containerd identifier (namespace, container id), or undefined if it is. */
export function identifierProblem(s: string): string | undefined {
  if (s === '') return 'identifier must not be empty';
  if (s.length > MAX_IDENTIFIER) return `identifier "${s}" greater than maximum length (${MAX_IDENTIFIER} characters)`;
  if (!IDENTIFIER.test(s)) return `identifier "${s}" must match ${IDENTIFIER.source}`;
  return undefined;
}

/** The error messages tsrund answers with, worded as containerd words them. */
export const errors = {
  namespaceRequired: () => new TsrunError('FailedPrecondition', 'namespace is required: failed precondition'),
  namespaceExists: (n: string) => new TsrunError('AlreadyExists', `namespace "${n}": already exists`),
  namespaceMissing: (n: string) => new TsrunError('NotFound', `namespace "${n}": not found`),
  namespaceNotEmpty: (n: string) =>
    new TsrunError('FailedPrecondition', `namespace "${n}" must be empty, but it still has containers: failed precondition`),
  containerMissing: (id: string, ns: string) => new TsrunError('NotFound', `container "${id}" in namespace "${ns}": not found`),
  containerExists: (id: string) => new TsrunError('AlreadyExists', `container "${id}": already exists`),
  taskMissing: (id: string) => new TsrunError('NotFound', `task ${id} not found`),
  taskExists: (id: string) => new TsrunError('AlreadyExists', `task ${id}: already exists`),
  processMissing: (execId: string) => new TsrunError('NotFound', `process ${execId} does not exist: not found`),
  processExists: (execId: string) => new TsrunError('AlreadyExists', `id ${execId}: already exists`),
  processFinished: () => new TsrunError('NotFound', 'process already finished: not found'),
  /** containerd answers Unknown here; Internal maps to gRPC Unknown at the edge */
  pauseStopped: () => new TsrunError('Internal', 'cannot pause a stopped container: unknown'),
  leaseExists: (id: string) => new TsrunError('AlreadyExists', `lease "${id}": already exists`),
  leaseMissing: (id: string) => new TsrunError('NotFound', `lease "${id}": not found`),
  invalid: (what: string) => new TsrunError('InvalidArgument', `${what}: invalid argument`),
};

/** Throw InvalidArgument with containerd's wording unless `id` is a valid identifier. */
export function validateIdentifier(prefix: string, id: string): void {
  const problem = identifierProblem(id);
  if (problem !== undefined) throw errors.invalid(`${prefix}: ${problem}`);
}
