/*
 * Platforms: the host's, parsing "os/arch[/variant]", and picking a manifest from an index the
 * way containerd's platforms.Only matcher does: the architecture names are normalised
 * (x86_64 → amd64, aarch64 → arm64, …), arm64 with no variant equals arm64/v8, and an arm
 * host runs its own variant or an older one (v7 runs v6 and v5), preferring the newest.
 */
import { TsrunError } from '../../spec/errors';
import type { Descriptor, Platform } from './manifest';

/** Normalise os/arch/variant as containerd's platforms.Normalize does. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  let arch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() ?? '';
  switch (arch) {
    case 'i386':
      arch = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === '8' || variant === 'v8') variant = '';
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
    default:
      break;
  }
  return variant === '' ? { os, architecture: arch } : { os, architecture: arch, variant };
}

/** The platform this process runs on, as an image index names it. */
export function hostPlatform(): Platform {
  const archMap: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', mips64el: 'mips64le', loong64: 'loong64' };
  const arch = archMap[process.arch] ?? process.arch;
  if (arch === 'arm') {
    const v = (process.config.variables as unknown as Record<string, unknown>)['arm_version'];
    return normalizePlatform({ os: 'linux', architecture: 'arm', variant: typeof v === 'string' ? v : '7' });
  }
  return normalizePlatform({ os: 'linux', architecture: arch });
}

/** Parse "os/arch[/variant]" (or just "arch", meaning linux) as `docker pull --platform` does. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new TsrunError('InvalidArgument', `parse platform "${s}": want os/arch[/variant]`);
  }
  if (parts.length === 1) return normalizePlatform({ os: 'linux', architecture: parts[0]! });
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform(variant === undefined ? { os, architecture } : { os, architecture, variant });
}

/** "linux/arm/v7" */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant !== undefined && p.variant !== '' ? `/${p.variant}` : ''}`;
}

/**
 * How well `candidate` suits `want`: undefined when it can't run, else a rank where lower is
 * better (0 = exact variant; arm hosts accept older variants with a higher rank).
 */
export function platformRank(want: Platform, candidate: Platform): number | undefined {
  const w = normalizePlatform(want);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return undefined;
  const wv = w.variant ?? '';
  const cv = c.variant ?? '';
  if (wv === cv) return 0;
  if (w.architecture === 'arm' && /^v[5-8]$/.test(wv) && /^v[5-8]$/.test(cv)) {
    const diff = Number(wv.slice(1)) - Number(cv.slice(1));
    return diff > 0 ? diff : undefined;
  }
  // an index entry without a variant runs on any variant of its architecture
  if (cv === '') return 10;
  return undefined;
}

/** Pick the best manifest for `want` from an index's entries (first of equal rank wins). */
export function selectManifest(manifests: readonly Descriptor[], want: Platform): Descriptor | undefined {
  let best: { d: Descriptor; rank: number } | undefined;
  for (const d of manifests) {
    if (d.platform === undefined) continue;
    // attestation manifests (buildkit) carry platform unknown/unknown and are never images
    if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') continue;
    const rank = platformRank(want, d.platform);
    if (rank !== undefined && (best === undefined || rank < best.rank)) best = { d, rank };
  }
  return best?.d;
}
