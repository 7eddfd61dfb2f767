/*
 * The environment the launcher (launcher.sh) gives node for tsrun's own start-up and
 * that nothing tsrun starts should inherit.
 */

/** What the launcher sets GLIBC_TUNABLES to when the caller set none (see launcher.sh for why). */
export const LAUNCHER_GLIBC_TUNABLES = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432';

/**
 * Drop the launcher's GLIBC_TUNABLES from `env`, so processes tsrun starts with its environment
 * (`ps` for `tsrun ps`) do not get it; a caller's own value differs and stays.
 */
export function dropLauncherEnv(env: NodeJS.ProcessEnv = process.env): void {
  if (env['GLIBC_TUNABLES'] === LAUNCHER_GLIBC_TUNABLES) delete env['GLIBC_TUNABLES'];
  launcherCallerFds = env[CALLER_FDS_ENV];
  delete env[CALLER_FDS_ENV];
}

/** Where the launcher lists the fds above 2 the caller passed, when --preserve-fds is given. */
export const CALLER_FDS_ENV = 'TSRUN_CALLER_FDS';

// Set at run time by dropLauncherEnv (never at snapshot build time, when nothing has run).
let launcherCallerFds: string | undefined;

/** The launcher's list of caller fds (space-separated numbers), or undefined when node was started without it. */
export function callerFdsFromLauncher(): string | undefined {
  return launcherCallerFds;
}
