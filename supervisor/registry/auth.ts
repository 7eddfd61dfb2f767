/*
 * Registry credentials and challenges.
 *
 * Credentials come from a docker-style config.json: `auths` keyed by registry ("host[:port]",
 * "https://host/v1/", …), each with `auth` (base64 "user:password") or `username` and
 * `password`. Docker Hub's key is "https://index.docker.io/v1/". Credential helpers
 * (credsStore, credHelpers) are not run.
 *
 * Challenges are the WWW-Authenticate header of a 401 (RFC 7235): `Basic realm="…"` or
 * `Bearer realm="…",service="…",scope="…"`; the bearer realm is the token endpoint.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TsrunError } from '../../spec/errors';
import { DOCKER_HUB } from './reference';

/** A user name and password (or token) for one registry. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** Where docker looks for its config: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env['DOCKER_CONFIG'];
  if (dir !== undefined && dir !== '') return path.join(dir, 'config.json');
  return path.join(env['HOME'] ?? os.homedir(), '.docker', 'config.json');
}

/** The host[:port] an `auths` key stands for ("https://index.docker.io/v1/" → "docker.io"). */
export function authKeyHost(key: string): string {
  let host = key.trim();
  host = host.replace(/^[a-z]+:\/\//i, '');
  host = host.split('/')[0] ?? host;
  host = host.toLowerCase();
  if (host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'registry.hub.docker.com') return DOCKER_HUB;
  return host;
}

function decodeEntry(key: string, file: string, v: unknown): Credentials | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const e = v as Record<string, unknown>;
  if (typeof e['auth'] === 'string' && e['auth'] !== '') {
    const text = Buffer.from(e['auth'], 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon <= 0) throw new TsrunError('InvalidArgument', `read credentials for "${key}" in ${file}: "auth" is not base64 of "user:password"`);
    return { username: text.slice(0, colon), password: text.slice(colon + 1).replace(/\n$/, '') };
  }
  if (typeof e['username'] === 'string' && typeof e['password'] === 'string') return { username: e['username'], password: e['password'] };
  return undefined;
}

/**
 * Credentials for `domain` from the config file at `file`; undefined when the file or an
 * entry is missing. A file that exists but isn't valid JSON is an error naming it.
 */
export function loadCredentials(domain: string, file: string): Credentials | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TsrunError('PermissionDenied', `read docker config ${file}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new TsrunError('InvalidArgument', `read docker config ${file}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  const auths = (doc as Record<string, unknown> | null)?.['auths'];
  if (typeof auths !== 'object' || auths === null) return undefined;
  const want = domain.toLowerCase();
  // an exact key first, then any key naming the same host (with scheme or path)
  const entries = Object.entries(auths as Record<string, unknown>);
  const exact = entries.find(([k]) => k === domain);
  if (exact !== undefined) {
    const c = decodeEntry(exact[0], file, exact[1]);
    if (c !== undefined) return c;
  }
  for (const [k, v] of entries) {
    if (authKeyHost(k) !== want) continue;
    const c = decodeEntry(k, file, v);
    if (c !== undefined) return c;
  }
  return undefined;
}

/** One parsed authentication challenge. */
export interface Challenge {
  /** lower-case scheme: "basic", "bearer" */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parse a WWW-Authenticate header into its challenges (quoted strings with \-escapes). */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = (): void => {
    while (i < s.length && /[\s,]/.test(s[i]!)) i++;
  };
  const token = (): string => {
    const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(s.slice(i));
    if (m === null) return '';
    i += m[0].length;
    return m[0];
  };
  for (;;) {
    skipWs();
    const scheme = token();
    if (scheme === '') break;
    const params: Record<string, string> = {};
    for (;;) {
      while (i < s.length && /[ \t]/.test(s[i]!)) i++;
      const save = i;
      const name = token();
      while (i < s.length && /[ \t]/.test(s[i]!)) i++;
      if (name === '' || s[i] !== '=') {
        i = save;
        break;
      }
      i++;
      while (i < s.length && /[ \t]/.test(s[i]!)) i++;
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else {
        value = token();
      }
      params[name.toLowerCase()] = value;
      while (i < s.length && /[ \t]/.test(s[i]!)) i++;
      if (s[i] === ',') i++;
      else break;
    }
    out.push({ scheme: scheme.toLowerCase(), params });
  }
  return out;
}

/** The Authorization header value for basic auth. */
export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
