/*
 * The one error type of the project. Codes are a closed set; messages are lower-case
 * "what failed: why", naming the path or value. The C helper's {stage, errno} ride along.
 */

/** The closed set of error codes; the CLI and the supervisor map these at their edges. */
export type ErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'FailedPrecondition'
  | 'PermissionDenied'
  | 'Unavailable'
  | 'Internal';

/** Extra facts an error may carry. */
export interface ErrorDetails {
  readonly cause?: unknown;
  /** errno name or number reported by the kernel, e.g. "ENOENT". */
  readonly errno?: string;
  /** Where in container set-up the failure happened (C helper stage name). */
  readonly stage?: string;
  /** Errors from cleanup that ran after this failure. */
  readonly cleanup?: readonly Error[];
}

/** The only error the project throws on purpose. */
export class TsrunError extends Error {
  readonly code: ErrorCode;
  readonly errno: string | undefined;
  readonly stage: string | undefined;
  readonly cleanup: readonly Error[];

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TsrunError';
    this.code = code;
    this.errno = details.errno;
    this.stage = details.stage;
    this.cleanup = details.cleanup ?? [];
  }

  /** The message plus any cleanup failures, as one line for stderr and logs. */
  fullMessage(): string {
    if (this.cleanup.length === 0) return this.message;
    return `${this.message} (cleanup also failed: ${this.cleanup.map((e) => e.message).join('; ')})`;
  }
}

/** Map a Node.js system error code (ENOENT, EACCES, …) to our error code. */
export function codeForErrno(errno: string | undefined): ErrorCode {
  switch (errno) {
    case 'ENOENT':
    case 'ESRCH':
      return 'NotFound';
    case 'EEXIST':
      return 'AlreadyExists';
    case 'EACCES':
    case 'EPERM':
      return 'PermissionDenied';
    case 'EINVAL':
    case 'ENOTDIR':
    case 'EISDIR':
    case 'ELOOP':
    case 'ENAMETOOLONG':
      return 'InvalidArgument';
    case 'EBUSY':
    case 'EAGAIN':
    case 'EWOULDBLOCK':
      return 'Unavailable';
    default:
      return 'Internal';
  }
}

/** Wrap a Node.js fs/system error as a TsrunError: "<what>: <reason>". */
export function wrapSystemError(what: string, err: unknown): TsrunError {
  if (err instanceof TsrunError) return err;
  const e = err as NodeJS.ErrnoException;
  const errno = typeof e?.code === 'string' ? e.code : undefined;
  const reason = errno ? describeErrno(errno) : e instanceof Error ? e.message : String(err);
  return new TsrunError(codeForErrno(errno), `${what}: ${reason}`, errno ? { cause: err, errno } : { cause: err });
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file exists',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  ELOOP: 'too many levels of symbolic links',
  EBUSY: 'device or resource busy',
  ESRCH: 'no such process',
  EAGAIN: 'resource temporarily unavailable',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ENOEXEC: 'exec format error',
  ENOSYS: 'function not implemented',
  EXDEV: 'invalid cross-device link',
  ENAMETOOLONG: 'file name too long',
  ETIMEDOUT: 'connection timed out',
  ENOTEMPTY: 'directory not empty',
  EBADF: 'bad file descriptor',
  EMFILE: 'too many open files',
  ENXIO: 'no such device or address',
  ENODEV: 'no such device',
  ECHILD: 'no child processes',
  E2BIG: 'argument list too long',
};

/** The lower-case strerror text runc and Go print for an errno name (engines match on it). */
export function describeErrno(errno: string): string {
  return ERRNO_TEXT[errno] ?? errno.toLowerCase();
}
