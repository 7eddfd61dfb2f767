/*
 * What every tsctl command gets: the tsrund client (namespace header set), the streams it prints
 * on, the caller's environment, and the exit-code convention:
 *
 *   125  tsctl's own errors (bad flags, tsrund unreachable, a failed run)
 *   126  the command cannot be invoked (permission denied)      run / exec
 *   127  the command was not found                              run / exec
 *   1    a daemon error about a container (No such container…) every other command
 *   N    the container's (or exec's) exit code                  run attached, exec
 */
import { TsrunError } from '../../spec/errors';
import type { TsrundClient } from '../client';

/** A command's environment. */
export interface Ctx {
  readonly client: TsrundClient;
  readonly namespace: string;
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly env: NodeJS.ProcessEnv;
  /** print a line on stdout */
  out(line: string): void;
  /** print a line on stderr (with the tsctl: prefix for errors) */
  warn(line: string): void;
}

const exitCodes = new WeakMap<Error, number>();

/** Mark `err` to end tsctl with `code` (125/126/127/1). */
export function withExit<E extends Error>(err: E, code: number): E {
  exitCodes.set(err, code);
  return err;
}

/** The exit code an error asks for, if it was marked. */
export function exitCodeOf(err: unknown): number | undefined {
  return err instanceof Error ? exitCodes.get(err) : undefined;
}

/** A usage error (exit 125). */
export function usage(message: string): TsrunError {
  return withExit(new TsrunError('InvalidArgument', message), 125);
}

/** The exit code for a process that could not be started, from the runtime's message (docker's rule). */
export function startFailureExit(message: string): number {
  const m = message.toLowerCase();
  if (/permission denied|eacces|not executable|is a directory/.test(m)) return 126;
  if (/no such file|not found|enoent|executable file not found/.test(m)) return 127;
  return 125;
}
