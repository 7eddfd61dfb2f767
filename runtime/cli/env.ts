/*
 * The environment the launcher (runtime/cli/launcher.sh) gives node for tsrun's own start-up and
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
}
