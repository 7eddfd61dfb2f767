/*
 * Carry out the operations resources.ts computed, against whichever directories a driver
 * resolves for each controller. Shared by v1 and v2; only `dirFor` and the explanation of a
 * missing file differ between them.
 */
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { parseLimit } from './convert';
import { readFile, readIfExists, writeFile, type CgroupFs } from './fs';
import type { CgroupOp, CgroupWrite } from './resources';

/** Where a driver's controllers live. */
export interface OpTarget {
  /** The cgroup directory holding `controller`'s files; throws when the controller is missing. */
  dirFor(controller: string): string;
  /** A better error for a file that does not exist (e.g. "controller not enabled"), or `err` itself. */
  explainMissing(controller: string, dir: string, err: TsrunError): TsrunError;
}

function isErrno(err: unknown, errno: string): err is TsrunError {
  return err instanceof TsrunError && err.errno === errno;
}

/** Apply `ops` in order; writes marked retryOnEinval that the kernel refused are retried at the end. */
export function runOps(cfs: CgroupFs, ops: readonly CgroupOp[], target: OpTarget): void {
  const retries: (() => void)[] = [];
  for (const op of ops) {
    const dir = target.dirFor(op.controller);
    switch (op.kind) {
      case 'write':
        runWrite(cfs, op, dir, target, retries);
        break;
      case 'limit-pair': {
        const current = readIfExists(cfs, dir, op.ceiling.file);
        if (current === undefined && op.ceiling.optional) {
          writeFile(cfs, dir, op.limit.file, op.limit.value);
          break;
        }
        // The kernel keeps limit <= ceiling at every moment, so a limit above the current
        // ceiling has to wait until the ceiling is raised.
        const next = parseLimit(op.limit.value);
        const ceiling = current === undefined ? null : parseLimit(current);
        const ceilingFirst = ceiling !== null && (next === null || next > ceiling);
        const order = ceilingFirst ? [op.ceiling, op.limit] : [op.limit, op.ceiling];
        for (const w of order) {
          try {
            writeFile(cfs, dir, w.file, w.value);
          } catch (err) {
            throw isErrno(err, 'ENOENT') ? target.explainMissing(op.controller, dir, err) : err;
          }
        }
        break;
      }
      case 'check-usage': {
        const usage = BigInt(readFile(cfs, dir, op.file));
        const limit = parseLimit(op.limit);
        if (limit !== null && limit < usage) {
          throw new TsrunError(
            'FailedPrecondition',
            `set memory limit ${op.limit}: below the current usage ${usage} in ${path.join(dir, op.file)} (memory.checkBeforeUpdate)`,
          );
        }
        break;
      }
      case 'write-field': {
        const fields = readFile(cfs, dir, op.file).split(/\s+/);
        while (fields.length <= op.field) fields.push('');
        fields[op.field] = op.value;
        writeFile(cfs, dir, op.file, fields.join(' '));
        break;
      }
      default: {
        const never: never = op;
        throw new TsrunError('Internal', `unknown cgroup operation ${JSON.stringify(never)}`);
      }
    }
  }
  for (const retry of retries) retry();
}

function runWrite(cfs: CgroupFs, op: CgroupWrite, dir: string, target: OpTarget, retries: (() => void)[]): void {
  try {
    writeFile(cfs, dir, op.file, op.value);
    return;
  } catch (err) {
    if (isErrno(err, 'EINVAL') && op.retryOnEinval === true) {
      retries.push(() => writeFile(cfs, dir, op.file, op.value));
      return;
    }
    if (!isErrno(err, 'ENOENT')) throw err;
    if (op.fallback !== undefined) {
      try {
        writeFile(cfs, dir, op.fallback.file, op.fallback.value);
        return;
      } catch (err2) {
        if (!isErrno(err2, 'ENOENT')) throw err2;
        const both = new TsrunError(err.code, `${err.message} (and ${op.fallback.file} does not exist either)`, { cause: err, errno: 'ENOENT' });
        throw target.explainMissing(op.controller, dir, both);
      }
    }
    if (op.optional === true) return;
    throw target.explainMissing(op.controller, dir, err);
  }
}
