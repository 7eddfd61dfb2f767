/*
 * Image references, normalised exactly as docker's distribution/reference package does:
 *
 *   [domain[:port]/]path[:tag][@algorithm:hex]
 *
 *   "busybox"                  → docker.io/library/busybox:latest
 *   "user/app:1"               → docker.io/user/app:1
 *   "localhost:5000/app"       → localhost:5000/app:latest
 *   "index.docker.io/x"        → docker.io/library/x:latest
 *
 * The first path component is a domain only when it contains "." or ":", is "localhost", or has
 * an upper-case letter (so "Foo/bar" fails as a bad domain rather than a bad repository name).
 */
import { TsrunError } from '../../spec/errors';

/** A parsed, normalised image reference. */
export interface Reference {
  /** registry host as written (docker.io for Docker Hub), possibly with ":port" */
  readonly domain: string;
  /** repository path inside the registry, e.g. "library/busybox" */
  readonly path: string;
  /** tag; "latest" when neither a tag nor a digest was given */
  readonly tag: string | undefined;
  /** "sha256:<hex>" when the reference pins a digest */
  readonly digest: string | undefined;
}

/** Docker Hub's canonical domain, and the host its API actually answers on. */
export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API = 'registry-1.docker.io';

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const DIGEST_RE = new RegExp(`^${DIGEST}$`);
const HEX64_RE = /^[a-f0-9]{64}$/;
const NAME_TOTAL_MAX = 255;

function bad(ref: string, why: string): TsrunError {
  return new TsrunError('InvalidArgument', `parse image reference "${ref}": invalid reference format: ${why}`);
}

/** Check an "algorithm:hex" digest; sha256 and sha512 must have their exact lower-case length. */
export function validateDigest(digest: string, context: string): void {
  const known: Record<string, number> = { sha256: 64, sha512: 128 };
  if (!DIGEST_RE.test(digest)) throw new TsrunError('InvalidArgument', `${context}: invalid digest "${digest}"`);
  const [alg, hex] = digest.split(':') as [string, string];
  const len = known[alg];
  if (len === undefined) throw new TsrunError('InvalidArgument', `${context}: unsupported digest algorithm "${alg}"`);
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new TsrunError('InvalidArgument', `${context}: invalid ${alg} digest "${digest}": want ${len} lower-case hex digits`);
  }
}

/** Parse a reference as `docker pull` does (ParseNormalizedNamed + TagNameOnly). */
export function parseReference(input: string): Reference {
  if (input === '') throw bad(input, 'empty reference');
  if (HEX64_RE.test(input)) {
    throw bad(input, 'cannot specify 64-byte hexadecimal strings as a repository name');
  }
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad(input, `invalid digest "${digest}"`);
    try {
      validateDigest(digest, 'digest');
    } catch (err) {
      throw bad(input, (err as Error).message);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(input, `invalid tag "${tag}"`);
  }
  const slash = rest.indexOf('/');
  let domain: string;
  let path: string;
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DOCKER_HUB;
    path = rest;
  } else {
    domain = first;
    path = rest.slice(slash + 1);
  }
  if (domain === 'index.docker.io') domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (!DOMAIN_RE.test(domain)) throw bad(input, `invalid registry domain "${domain}"`);
  if (path !== path.toLowerCase()) throw bad(input, `repository name "${path}" must be lowercase`);
  if (!PATH_RE.test(path)) throw bad(input, `invalid repository name "${path}"`);
  if (domain.length + 1 + path.length > NAME_TOTAL_MAX) {
    throw bad(input, `repository name must not be more than ${NAME_TOTAL_MAX} characters`);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { domain, path, tag, digest };
}

/** The repository name with its domain: "docker.io/library/busybox". */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full normalised reference: "docker.io/library/busybox:latest", "host/x@sha256:…". */
export function formatReference(ref: Reference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The short form docker prints: "busybox:latest", "user/app:1", other registries in full. */
export function familiarReference(ref: Reference): string {
  let name = repositoryName(ref);
  if (ref.domain === DOCKER_HUB) name = ref.path.startsWith('library/') ? ref.path.slice('library/'.length) : ref.path;
  return `${name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** What to ask the registry's manifest endpoint for: the digest when pinned, else the tag. */
export function manifestReference(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** The host:port the registry API answers on (Docker Hub's API lives on registry-1.docker.io). */
export function apiHost(domain: string): string {
  return domain === DOCKER_HUB ? DOCKER_HUB_API : domain;
}
