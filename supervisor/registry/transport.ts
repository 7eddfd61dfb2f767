/*
 * HTTP(S) for the registry client, on node's own http/https.
 *
 * Which scheme a registry gets, as docker decides it:
 *   - loopback hosts (localhost, 127.0.0.0/8, ::1): HTTPS is tried first; when the server
 *     doesn't speak TLS at all the client falls back to plain HTTP. A certificate that fails
 *     verification is an error, never a reason to fall back.
 *   - hosts listed as insecure: HTTPS without certificate verification, else plain HTTP.
 *   - every other host: HTTPS, verified against the system roots, NODE_EXTRA_CA_CERTS and the
 *     CA files given.
 *   - `plainHttp` forces HTTP for every registry (ctr's --plain-http).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { Readable } from 'node:stream';
import * as tls from 'node:tls';
import { TsrunError } from '../../spec/errors';

/** How the client reaches registries. */
export interface TransportOptions {
  /** "host:port", "host" or CIDR entries allowed without TLS verification or over plain HTTP */
  readonly insecureRegistries?: readonly string[];
  /** PEM files of extra CAs to trust for HTTPS registries */
  readonly caFiles?: readonly string[];
  /** use plain HTTP for every registry */
  readonly plainHttp?: boolean;
  /** no bytes for this long is a stalled request (default 30 s) */
  readonly stallTimeoutMs?: number;
}

/** One request on the wire. */
export interface WireRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer | Readable;
  /** skip certificate verification (insecure registry) */
  readonly insecure: boolean;
  /** what the request is for, to name in a stall error */
  readonly what: string;
}

/** True for localhost, 127.0.0.0/8 and ::1 (with or without a port). */
export function isLoopbackHost(hostPort: string): boolean {
  let host = hostPort;
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (v6 !== null) host = v6[1]!;
  else if (host.includes(':') && host.split(':').length === 2) host = host.split(':')[0]!;
  host = host.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * True when `hostPort` is in the insecure list: "host:port", "host" (any port), or a CIDR such as
 * "10.0.0.0/8" matching an IP address host, as docker's --insecure-registry takes them.
 */
export function isInsecureHost(hostPort: string, insecure: readonly string[]): boolean {
  const h = hostPort.toLowerCase();
  const bare = h.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return insecure.some((e) => {
    const x = e.toLowerCase().replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
    const cidr = /^([0-9a-f.:]+)\/(\d{1,3})$/.exec(x);
    if (cidr !== null) {
      const family = net.isIPv4(cidr[1]!) ? 'ipv4' : net.isIPv6(cidr[1]!) ? 'ipv6' : undefined;
      const hostFamily = net.isIPv4(bare) ? 'ipv4' : net.isIPv6(bare) ? 'ipv6' : undefined;
      if (family === undefined || family !== hostFamily) return false;
      const list = new net.BlockList();
      try {
        list.addSubnet(cidr[1]!, Number(cidr[2]), family);
      } catch {
        return false;
      }
      return list.check(bare, family);
    }
    return x === h || x === bare;
  });
}

/** Errors that mean "the server does not speak TLS here", as opposed to "its certificate is bad". */
export function isNotTlsError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  return code === 'EPROTO' || code === 'ECONNRESET' || code.startsWith('ERR_SSL_') || /wrong version number|packet length too long/i.test(String((err as Error)?.message));
}

/** Connection-level failures worth a retry. */
export function isRetryableNetError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  return ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET'].includes(code) || (err as Error)?.message === 'socket hang up' || (err as Error)?.message === 'aborted';
}

/** A stall: no bytes for the configured time. */
export class StallError extends TsrunError {
  constructor(what: string, ms: number) {
    super('Unavailable', `${what}: stalled: no data for ${ms < 10_000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`}`);
  }
}

/** Keep-alive agents and the CA set, shared by one client's requests. */
export interface Transport {
  send(req: WireRequest): Promise<http.IncomingMessage>;
  readonly stallTimeoutMs: number;
  destroy(): void;
}

function loadCAs(files: readonly string[]): string[] | undefined {
  if (files.length === 0) return undefined;
  // an explicit `ca` replaces node's defaults, NODE_EXTRA_CA_CERTS included, so add them back
  const out = [...tls.rootCertificates];
  const extra = process.env['NODE_EXTRA_CA_CERTS'];
  for (const f of [...(extra !== undefined && extra !== '' ? [extra] : []), ...files]) {
    try {
      out.push(fs.readFileSync(f, 'utf8'));
    } catch (err) {
      throw new TsrunError('InvalidArgument', `read CA file ${f}: ${(err as Error).message}`, { cause: err });
    }
  }
  return out;
}

/** Make a transport with its own agents. */
export function createTransport(opts: TransportOptions): Transport {
  const ca = loadCAs(opts.caFiles ?? []);
  const stallTimeoutMs = opts.stallTimeoutMs ?? 30_000;
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, ...(ca !== undefined ? { ca } : {}) });
  const insecureAgent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
  const send = (req: WireRequest): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      const isHttps = req.url.protocol === 'https:';
      const mod = isHttps ? https : http;
      const agent = isHttps ? (req.insecure ? insecureAgent : httpsAgent) : httpAgent;
      const headers: Record<string, string> = { ...req.headers };
      if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
      const r = mod.request(req.url, { method: req.method, headers, agent });
      let settled = false;
      r.setTimeout(stallTimeoutMs, () => {
        r.destroy(new StallError(req.what, stallTimeoutMs));
      });
      r.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
      r.on('response', (res) => {
        settled = true;
        // the caller times the body itself (see readWithStall); the socket timer is for headers
        r.setTimeout(0);
        resolve(res);
      });
      if (req.body === undefined) r.end();
      else if (Buffer.isBuffer(req.body)) r.end(req.body);
      else {
        req.body.on('error', (err) => r.destroy(err));
        req.body.pipe(r);
      }
    });
  return {
    send,
    stallTimeoutMs,
    destroy: () => {
      httpAgent.destroy();
      httpsAgent.destroy();
      insecureAgent.destroy();
    },
  };
}

/**
 * Iterate a response body, failing with a StallError naming `what` when no bytes arrive for
 * `ms` milliseconds.
 */
export async function* readWithStall(res: http.IncomingMessage, what: string, ms: number): AsyncGenerator<Buffer> {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => res.destroy(new StallError(what, ms)), ms);
  };
  arm();
  try {
    for await (const chunk of res) {
      arm();
      yield chunk as Buffer;
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** Read a small body whole (error documents, tokens, manifests), bounded by `limit`. */
export async function readBody(res: http.IncomingMessage, what: string, ms: number, limit = 16 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of readWithStall(res, what, ms)) {
    n += c.length;
    if (n > limit) {
      res.destroy();
      throw new TsrunError('InvalidArgument', `${what}: response larger than ${limit} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
