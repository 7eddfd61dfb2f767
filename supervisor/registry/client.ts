/*
 * One registry conversation: scheme resolution (ping /v2/), authentication, retries,
 * redirects and error reporting. pull.ts and push.ts speak the distribution API through it.
 *
 *   request ─▶ Authorization from the cache (basic, or the bearer token for this scope)
 *           ◀─ 401 + WWW-Authenticate ─▶ token endpoint (scope repository:<name>:<actions>) ─▶ retry once
 *           ◀─ 5xx/429/connection error ─▶ back off (250 ms × 2ⁿ, Retry-After honoured) ─▶ retry
 *           ◀─ 3xx (blobs) ─▶ follow; no Authorization to another host
 *           ◀─ other status ─▶ TsrunError naming the request, the status and errors[].code/message
 */
import type * as http from 'node:http';
import type { Readable } from 'node:stream';
import { TsrunError, type ErrorCode } from '../../spec/errors';
import { basicAuthorization, defaultDockerConfigPath, loadCredentials, parseChallenges, type Challenge, type Credentials } from './auth';
import { apiHost } from './reference';
import { createTransport, isInsecureHost, isLoopbackHost, isNotTlsError, isRetryableNetError, readBody, StallError, type Transport, type TransportOptions } from './transport';

/** Options of a registry client. */
export interface ClientOptions extends TransportOptions {
  /** docker config.json to read credentials from (default $DOCKER_CONFIG/config.json or ~/.docker/config.json) */
  readonly dockerConfig?: string;
  /** credentials to use instead of the config file's, per registry domain */
  readonly credentials?: (domain: string) => Credentials | undefined;
  /** retries after a connection error, 5xx or 429 (default 3) */
  readonly retries?: number;
  /** first back-off delay (default 250 ms); doubles on each retry */
  readonly retryDelayMs?: number;
  readonly userAgent?: string;
}

/** A request through the client. */
export interface RegistryRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** path below the registry root ("/v2/…") or an absolute URL (an upload Location) */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** a Buffer, or a function that opens the body afresh for each attempt */
  readonly body?: Buffer | (() => Promise<Readable>);
  /** statuses that count as success */
  readonly expect: readonly number[];
  /** what this request is for, in errors: "pull manifest 127.0.0.1:5000/app:1" */
  readonly what: string;
  /** follow 3xx to other hosts (blob downloads) */
  readonly followRedirects?: boolean;
}

/** A registry error document's entries. */
export interface RegistryErrorEntry {
  readonly code: string;
  readonly message: string;
}

/** Parse a distribution-spec error body ({"errors":[{"code","message"}]}) if it is one. */
export function parseErrorBody(body: Buffer): RegistryErrorEntry[] {
  try {
    const doc = JSON.parse(body.toString('utf8')) as { errors?: unknown };
    if (!Array.isArray(doc.errors)) return [];
    return doc.errors.map((e: { code?: unknown; message?: unknown }) => ({ code: String(e.code ?? ''), message: String(e.message ?? '') }));
  } catch {
    return [];
  }
}

/** The error code a registry status maps to. */
export function codeForStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return 'PermissionDenied';
  if (status === 404) return 'NotFound';
  if (status === 429 || status >= 500) return 'Unavailable';
  if (status === 400 || status === 405 || status === 413 || status === 416) return 'InvalidArgument';
  return 'Internal';
}

/** An HTTP failure as a TsrunError: "<what>: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown". */
export function statusError(what: string, res: http.IncomingMessage, body: Buffer): TsrunError {
  const entries = parseErrorBody(body);
  const detail = entries.length > 0 ? entries.map((e) => `${e.code}: ${e.message}`).join('; ') : body.toString('utf8').trim().slice(0, 200);
  const status = `${res.statusCode ?? 0} ${res.statusMessage ?? ''}`.trim();
  return new TsrunError(codeForStatus(res.statusCode ?? 0), `${what}: ${status}${detail !== '' ? `: ${detail}` : ''}`);
}

interface Token {
  readonly value: string;
  readonly expiresAt: number;
}

interface HostState {
  readonly base: string;
  readonly insecure: boolean;
  challenge: Challenge | undefined;
}

const RETRY_AFTER_MAX_MS = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A client for the registries of one pull or push (or a daemon's lifetime). */
export class RegistryClient {
  readonly transport: Transport;
  private readonly hosts = new Map<string, Promise<HostState>>();
  private readonly tokens = new Map<string, Promise<Token>>();
  private readonly creds = new Map<string, Credentials | undefined>();

  constructor(readonly opts: ClientOptions = {}) {
    this.transport = createTransport(opts);
  }

  /** Close idle connections. */
  close(): void {
    this.transport.destroy();
  }

  /** Credentials for a registry domain (cached for the client's life). */
  credentialsFor(domain: string): Credentials | undefined {
    if (!this.creds.has(domain)) {
      const c = this.opts.credentials !== undefined ? this.opts.credentials(domain) : loadCredentials(domain, this.opts.dockerConfig ?? defaultDockerConfigPath());
      this.creds.set(domain, c);
    }
    return this.creds.get(domain);
  }

  private get retries(): number {
    return this.opts.retries ?? 3;
  }

  private backoff(attempt: number, res?: http.IncomingMessage): number {
    const ra = Number(res?.headers['retry-after']);
    if (Number.isFinite(ra) && ra >= 0) return Math.min(ra * 1000, RETRY_AFTER_MAX_MS);
    return (this.opts.retryDelayMs ?? 250) * 2 ** attempt;
  }

  /** Resolve the scheme for `domain` by pinging /v2/ (once per client), learning its challenge. */
  host(domain: string): Promise<HostState> {
    let p = this.hosts.get(domain);
    if (p === undefined) {
      p = this.ping(domain);
      this.hosts.set(domain, p);
      p.catch(() => this.hosts.delete(domain));
    }
    return p;
  }

  private async ping(domain: string): Promise<HostState> {
    const host = apiHost(domain);
    const insecure = isInsecureHost(host, this.opts.insecureRegistries ?? []);
    const mayFallBack = insecure || isLoopbackHost(host);
    const schemes = this.opts.plainHttp === true ? ['http'] : mayFallBack ? ['https', 'http'] : ['https'];
    let lastErr: unknown;
    for (const scheme of schemes) {
      const base = `${scheme}://${host}`;
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await this.transport.send({
            method: 'GET',
            url: new URL(`${base}/v2/`),
            headers: this.baseHeaders(),
            insecure,
            what: `ping registry ${host}`,
          });
          await readBody(res, `ping registry ${host}`, this.transport.stallTimeoutMs, 1 << 20).catch(() => undefined);
          const status = res.statusCode ?? 0;
          if ((status >= 500 || status === 429) && attempt < this.retries) {
            await sleep(this.backoff(attempt, res));
            continue;
          }
          const header = res.headers['www-authenticate'];
          const challenge = status === 401 && typeof header === 'string' ? parseChallenges(header)[0] : undefined;
          return { base, insecure, challenge };
        } catch (err) {
          lastErr = err;
          if (scheme === 'https' && schemes.length > 1 && isNotTlsError(err)) break;
          if (isRetryableNetError(err) && attempt < this.retries) {
            await sleep(this.backoff(attempt));
            continue;
          }
          throw new TsrunError('Unavailable', `ping registry ${host} (${base}/v2/): ${(err as Error).message}`, { cause: err });
        }
      }
    }
    throw new TsrunError('Unavailable', `ping registry ${host}: ${(lastErr as Error | undefined)?.message ?? 'no scheme worked'}`, { cause: lastErr });
  }

  private baseHeaders(): Record<string, string> {
    return { 'user-agent': this.opts.userAgent ?? 'tsrun-registry/0.1' };
  }

  private async authorization(domain: string, scopes: readonly string[], state: HostState, what: string, fresh: boolean): Promise<string | undefined> {
    const ch = state.challenge;
    if (ch === undefined) return undefined;
    const creds = this.credentialsFor(domain);
    if (ch.scheme === 'basic') return creds !== undefined ? basicAuthorization(creds) : undefined;
    if (ch.scheme !== 'bearer') return undefined;
    const key = `${domain} ${scopes.join(' ')}`;
    const cached = this.tokens.get(key);
    if (!fresh && cached !== undefined) {
      const token = await cached.catch(() => undefined);
      if (token !== undefined && token.expiresAt > Date.now()) return `Bearer ${token.value}`;
    }
    // concurrent requests share one token fetch per scope
    const p = this.fetchToken(ch, scopes, creds, state, what);
    this.tokens.set(key, p);
    p.catch(() => {
      if (this.tokens.get(key) === p) this.tokens.delete(key);
    });
    return `Bearer ${(await p).value}`;
  }

  private async fetchToken(ch: Challenge, scopes: readonly string[], creds: Credentials | undefined, state: HostState, what: string): Promise<Token> {
    const realm = ch.params['realm'];
    if (realm === undefined || realm === '') throw new TsrunError('PermissionDenied', `${what}: bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (err) {
      throw new TsrunError('PermissionDenied', `${what}: bearer realm "${realm}" is not a URL`, { cause: err });
    }
    if (ch.params['service'] !== undefined) url.searchParams.set('service', ch.params['service']);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { ...this.baseHeaders(), accept: 'application/json' };
    if (creds !== undefined) headers['authorization'] = basicAuthorization(creds);
    const tokenWhat = `${what}: get token from ${url.origin}${url.pathname}`;
    const res = await this.sendWithRetry({ method: 'GET', url, headers, insecure: state.insecure, what: tokenWhat }, undefined);
    const body = await readBody(res, tokenWhat, this.transport.stallTimeoutMs, 1 << 20);
    if (res.statusCode !== 200) {
      const e = statusError(tokenWhat, res, body);
      throw new TsrunError(e.code, creds !== undefined && res.statusCode === 401 ? `${e.message} (wrong user name or password?)` : e.message);
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc;
    } catch (err) {
      throw new TsrunError('PermissionDenied', `${tokenWhat}: answer is not JSON`, { cause: err });
    }
    const value = typeof doc.token === 'string' && doc.token !== '' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (value === '') throw new TsrunError('PermissionDenied', `${tokenWhat}: answer has no token`);
    const ttl = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    // renew a little early so a token never expires between the cache check and the registry
    return { value, expiresAt: Date.now() + Math.max(ttl - 10, 1) * 1000 };
  }

  /** Send with retries on connection errors, 5xx and 429 (body opened afresh each time). */
  private async sendWithRetry(
    wire: Omit<Parameters<Transport['send']>[0], 'body'>,
    body: RegistryRequest['body'],
  ): Promise<http.IncomingMessage> {
    for (let attempt = 0; ; attempt++) {
      let res: http.IncomingMessage;
      try {
        const b = body === undefined || Buffer.isBuffer(body) ? body : await body();
        res = await this.transport.send(b === undefined ? wire : { ...wire, body: b });
      } catch (err) {
        // a stalled request (no response headers in time) is not retried: the stall time is the user's limit
        if (isRetryableNetError(err) && !(err instanceof StallError) && attempt < this.retries) {
          await sleep(this.backoff(attempt));
          continue;
        }
        if (err instanceof TsrunError) throw err;
        throw new TsrunError('Unavailable', `${wire.what}: ${(err as Error).message}`, { cause: err });
      }
      const status = res.statusCode ?? 0;
      if ((status >= 500 || status === 429) && attempt < this.retries) {
        res.resume();
        await sleep(this.backoff(attempt, res));
        continue;
      }
      return res;
    }
  }

  /**
   * Send a request for repository `repo` on `domain` with the auth scope `actions`
   * ("pull", "pull,push"); `extraScopes` adds scopes (a mount's source repository).
   * Resolves to a response whose status is in `req.expect`; anything else throws.
   */
  async request(domain: string, repo: string, actions: string, req: RegistryRequest, extraScopes: readonly string[] = []): Promise<http.IncomingMessage> {
    const state = await this.host(domain);
    const scopes = [`repository:${repo}:${actions}`, ...extraScopes];
    let url = new URL(req.path, state.base);
    let fresh = false;
    let authTried = false;
    let redirects = 0;
    for (;;) {
      const headers: Record<string, string> = { ...this.baseHeaders(), ...(req.headers ?? {}) };
      const sameHost = url.host === new URL(state.base).host;
      if (sameHost) {
        const auth = await this.authorization(domain, scopes, state, req.what, fresh);
        fresh = false;
        if (auth !== undefined) headers['authorization'] = auth;
      }
      const res = await this.sendWithRetry({ method: req.method, url, headers, insecure: state.insecure, what: req.what }, req.body);
      const status = res.statusCode ?? 0;
      if (status === 401 && sameHost && !authTried) {
        const header = res.headers['www-authenticate'];
        const ch = typeof header === 'string' ? parseChallenges(header)[0] : undefined;
        // basic credentials already sent and refused won't do better the second time
        const sentBasic = headers['authorization']?.startsWith('Basic ') === true;
        if (ch !== undefined && (ch.scheme === 'bearer' || (this.credentialsFor(domain) !== undefined && !sentBasic))) {
          res.resume();
          state.challenge = ch;
          authTried = true;
          fresh = true;
          continue;
        }
      }
      if (req.followRedirects === true && [301, 302, 303, 307, 308].includes(status) && typeof res.headers.location === 'string') {
        res.resume();
        if (++redirects > 10) throw new TsrunError('Unavailable', `${req.what}: more than 10 redirects`);
        url = new URL(res.headers.location, url);
        continue;
      }
      if (req.expect.includes(status)) return res;
      const body = req.method === 'HEAD' ? Buffer.alloc(0) : await readBody(res, req.what, this.transport.stallTimeoutMs, 1 << 20).catch(() => Buffer.alloc(0));
      const e = statusError(req.what, res, body);
      if (status === 401 && this.credentialsFor(domain) === undefined) {
        throw new TsrunError(e.code, `${e.message} (no credentials for ${domain}; docker login or add them to the config file)`);
      }
      throw e;
    }
  }
}
