/*
 * tsctl's gRPC client: the TsrundClient of ../client.ts spoken directly over node:http2 on the
 * unix socket, without grpc-js. grpc-js costs a short-lived CLI more than it gives: loading it
 * (channel, resolvers, load balancers, its own http and http2 users) and its per-call machinery
 * (call stacks, filters, credentials) were about half of `tsctl ps`'s time, and tsctl needs none
 * of it: one socket, no TLS, no retries, no load balancing. What stays is the gRPC wire format
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md), so tsrund sees the same calls:
 *
 *   request   HEADERS  :method POST  :path /<package>.<Service>/<Method>  content-type application/grpc
 *                      te trailers  [grpc-timeout NNNm]  [containerd-namespace]  [containerd-lease]
 *             DATA     one length-prefixed message per request (flag 0 = uncompressed, u32 BE length, bytes)
 *   response  HEADERS  :status 200 …, then DATA (messages), then trailers grpc-status [grpc-message]
 *             or a trailers-only response: grpc-status in the first HEADERS, no DATA
 *
 * Failures become RpcError with the gRPC status code and message as grpc-js gives them (UNAVAILABLE
 * for a socket that cannot be reached, DEADLINE_EXCEEDED for a passed deadline, CANCELLED for a
 * stream reset, the server's grpc-status/grpc-message otherwise). Messages are encoded and decoded
 * by the same protobufjs definitions as tsrund's (../grpc/definition.ts).
 */
import type * as http2 from 'node:http2';
import * as net from 'node:net';
import { RpcError, SERVICES, type CallOptions, type ServiceName, type TsrundClient } from '../client';
import { serviceDefinition } from '../grpc/definition';

/** gRPC status codes this client produces itself (the server's come as numbers). */
const CANCELLED = 1;
const UNKNOWN = 2;
const DEADLINE_EXCEEDED = 4;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNIMPLEMENTED = 12;

let http2Module: typeof http2 | undefined;

/** node:http2, loaded on the first call: a V8 startup snapshot cannot hold it (startup/entry.ts). */
function http2m(): typeof http2 {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  http2Module ??= require('node:http2') as typeof http2;
  return http2Module;
}

/** RST_STREAM error codes (RFC 9113, 7), without loading http2 for its constants. */
const NGHTTP2_NO_ERROR = 0;
const NGHTTP2_CANCEL = 8;

/** grpc-js's limit on a received message, which tsrund's server also uses. */
const MAX_MESSAGE = 16 << 20;

interface Method {
  path: string;
  encode(v: object): Buffer;
  decode(b: Buffer): unknown;
}

const methods = new Map<string, Map<string, Method>>();

/** Every service's methods, ready: what tsctl's startup snapshot captures (startup/entry.ts). */
export function warmH2Client(): void {
  for (const service of Object.keys(SERVICES) as ServiceName[]) method(service, '');
}

function method(service: ServiceName, name: string): Method | undefined {
  let m = methods.get(service);
  if (m === undefined) {
    m = new Map();
    for (const [k, d] of Object.entries(serviceDefinition(SERVICES[service]))) {
      m.set(k, { path: d.path, encode: d.requestSerialize as (v: object) => Buffer, decode: d.responseDeserialize as (b: Buffer) => unknown });
    }
    methods.set(service, m);
  }
  return m.get(name);
}

/** One message as a gRPC length-prefixed frame. */
export function frame(payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + payload.length);
  b[0] = 0;
  b.writeUInt32BE(payload.length, 1);
  b.set(payload, 5);
  return b;
}

/**
 * Splits a byte stream into gRPC messages: `push` takes each DATA chunk as it comes and returns
 * the complete messages so far; `rest` is what a stream ended in the middle of.
 */
export class Deframer {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    while (this.buf.length >= 5) {
      if (this.buf[0] !== 0) throw new RpcError(INTERNAL, 'received a compressed message, which tsctl did not ask for');
      const len = this.buf.readUInt32BE(1);
      if (len > MAX_MESSAGE) throw new RpcError(8, `Received message larger than max (${len} vs. ${MAX_MESSAGE})`);
      if (this.buf.length < 5 + len) break;
      out.push(this.buf.subarray(5, 5 + len));
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }

  get rest(): number {
    return this.buf.length;
  }
}

/** The gRPC status of a response from its trailers (or trailers-only headers) and HTTP status. */
export function statusOf(headers: http2.IncomingHttpHeaders | undefined, trailers: http2.IncomingHttpHeaders | undefined): RpcError | undefined {
  const t = trailers?.['grpc-status'] !== undefined ? trailers : headers;
  // node gives :status as a number whatever IncomingHttpHeaders says
  const http = headers?.[':status'] === undefined ? undefined : Number(headers[':status']);
  if (t?.['grpc-status'] === undefined) {
    // no gRPC status at all: the spec's mapping of the HTTP status, else a protocol error
    if (http !== undefined && http !== 200) return new RpcError(httpToGrpc(http), `Received HTTP status code ${http}`);
    return new RpcError(INTERNAL, 'Received RST_STREAM or end of stream without a grpc-status trailer');
  }
  const code = Number(t['grpc-status']);
  if (!Number.isInteger(code) || code < 0) return new RpcError(UNKNOWN, `Received invalid grpc-status ${String(t['grpc-status'])}`);
  if (code === 0) return undefined;
  const raw = t['grpc-message'];
  let details = typeof raw === 'string' ? raw : '';
  try {
    details = decodeURIComponent(details);
  } catch {
    // not percent-encoded after all: keep it as sent
  }
  return new RpcError(code, details);
}

function httpToGrpc(status: number): number {
  switch (status) {
    case 400:
      return INTERNAL;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return UNAVAILABLE;
    default:
      return UNKNOWN;
  }
}

/** grpc-timeout: at most 8 digits, so large deadlines go in coarser units. */
export function grpcTimeout(ms: number): string {
  const v = Math.max(0, Math.ceil(ms));
  if (v < 1e8) return `${v}m`;
  if (v / 1000 < 1e8) return `${Math.ceil(v / 1000)}S`;
  return `${Math.min(99_999_999, Math.ceil(v / 3_600_000))}H`;
}

/** A call in flight: its stream and how it ends. */
interface Call {
  stream: http2.ClientHttp2Stream;
  /** responses, then throws the call's RpcError if it failed; CANCELLED when `cancel` ended it */
  messages(): AsyncGenerator<unknown>;
  cancel(): void;
}

/** Connect to the tsrund (or containerd) socket at `socketPath`; the connection is made on the first call. */
export function connectTsrundH2(socketPath: string, opts: { namespace?: string } = {}): TsrundClient {
  const path = socketPath.replace(/^unix:(\/\/)?/, '');
  let session: http2.ClientHttp2Session | undefined;
  let connectError: Error | undefined;
  let closed = false;
  const open = new Set<http2.ClientHttp2Stream>();

  const connect = (): http2.ClientHttp2Session => {
    if (session !== undefined && !session.destroyed && !session.closed) return session;
    connectError = undefined;
    const s = http2m().connect('http://localhost', {
      createConnection: () => net.connect(path),
      // a 1 MiB window: a streamed export or save is not held up by a WINDOW_UPDATE every 64 KiB
      settings: { enablePush: false, initialWindowSize: 1 << 20 },
    });
    s.on('error', (e) => {
      connectError = e;
    });
    session = s;
    return s;
  };

  const start = (service: ServiceName, name: string, o: CallOptions, requests: readonly object[] | undefined): Call => {
    const m = method(service, name);
    if (m === undefined) throw new Error(`no method ${service}.${name}`);
    if (closed) throw new RpcError(UNAVAILABLE, 'the client was closed');
    const s = connect();
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': m.path,
      ':scheme': 'http',
      ':authority': 'localhost',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'tsctl',
    };
    if (o.timeoutMs !== undefined) headers['grpc-timeout'] = grpcTimeout(o.timeoutMs);
    const ns = o.namespace ?? opts.namespace ?? 'default';
    if (ns !== '') headers['containerd-namespace'] = ns;
    if (o.lease !== undefined && o.lease !== '') headers['containerd-lease'] = o.lease;
    const stream = s.request(headers, { endStream: false });
    open.add(stream);
    stream.on('close', () => open.delete(stream));
    let response: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    let ended: RpcError | undefined; // set by cancel or the deadline: the call's outcome whatever follows
    stream.on('response', (h) => {
      response = h;
    });
    stream.on('trailers', (h) => {
      trailers = h;
    });
    // errors surface through the iteration below; without a listener one would be thrown
    stream.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    if (o.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        ended ??= new RpcError(DEADLINE_EXCEEDED, 'Deadline exceeded');
        stream.close(NGHTTP2_CANCEL);
      }, o.timeoutMs);
      timer.unref();
    }
    if (requests !== undefined) {
      for (const r of requests) stream.write(frame(m.encode(r)));
      stream.end();
    }
    const failure = (e: unknown): RpcError => {
      if (ended !== undefined) return ended;
      if (e instanceof RpcError) return e;
      const err = e as NodeJS.ErrnoException;
      if (connectError !== undefined || (typeof err.code === 'string' && /^(ENOENT|ECONNREFUSED|EACCES|ECONNRESET|EPIPE|ERR_HTTP2_GOAWAY_SESSION|ERR_HTTP2_INVALID_SESSION)$/.test(err.code))) {
        const cause = connectError ?? err;
        return new RpcError(UNAVAILABLE, `No connection established. Last error: ${cause.message}`);
      }
      if (err.code === 'ERR_HTTP2_STREAM_ERROR' || (stream.rstCode !== undefined && stream.rstCode !== NGHTTP2_NO_ERROR)) {
        // RST_STREAM from the server (node reports CANCEL as a premature close, other codes as
        // stream errors): CANCEL is a cancellation, as grpc-js has it, anything else a protocol failure
        return stream.rstCode === NGHTTP2_CANCEL
          ? new RpcError(CANCELLED, 'Call cancelled')
          : new RpcError(INTERNAL, `Received RST_STREAM with code ${stream.rstCode ?? '?'}`);
      }
      return new RpcError(INTERNAL, err.message);
    };
    async function* messages(): AsyncGenerator<unknown> {
      const deframer = new Deframer();
      try {
        for await (const chunk of stream) {
          for (const b of deframer.push(chunk as Buffer)) yield m!.decode(b);
        }
        // (checked before the finally below resets a stream still open, which sets rstCode)
        if (ended !== undefined) throw ended;
        // no status: a reset may be why, and node tells its code only once the stream closes (it
        // will: our side has ended too; a duplex still writing is left as it is)
        const statusCame = trailers?.['grpc-status'] !== undefined || response?.['grpc-status'] !== undefined;
        if (!statusCame && !stream.closed && stream.writableEnded) await new Promise((resolve) => stream.once('close', resolve));
        // reset before a status came: the reset is the outcome
        if (trailers === undefined && response?.['grpc-status'] === undefined && stream.rstCode !== undefined && stream.rstCode !== NGHTTP2_NO_ERROR) {
          throw failure(Object.assign(new Error('stream reset'), { code: 'ERR_HTTP2_STREAM_ERROR' }));
        }
        if (response === undefined && connectError !== undefined) throw failure(connectError);
        const st = statusOf(response, trailers);
        if (st !== undefined) throw st;
        if (deframer.rest !== 0) throw new RpcError(INTERNAL, 'the stream ended inside a message');
      } catch (e) {
        throw failure(e);
      } finally {
        if (timer !== undefined) clearTimeout(timer);
        if (!stream.closed) stream.close(NGHTTP2_CANCEL);
      }
    }
    return {
      stream,
      messages,
      cancel: () => {
        ended ??= new RpcError(CANCELLED, 'Cancelled on client');
        if (!stream.closed) stream.close(NGHTTP2_CANCEL);
      },
    };
  };

  return {
    async call<T>(service: ServiceName, name: string, req: object = {}, o: CallOptions = {}): Promise<T> {
      const c = start(service, name, o, [req]);
      let res: unknown;
      let n = 0;
      for await (const m of c.messages()) {
        res = m;
        n++;
      }
      if (n !== 1) throw new RpcError(UNIMPLEMENTED, n === 0 ? 'No message received' : 'Received more than one message for a unary call');
      return res as T;
    },
    stream<T>(service: ServiceName, name: string, req: object = {}, o: CallOptions = {}) {
      const c = start(service, name, o, [req]);
      async function* iterate(): AsyncGenerator<T> {
        try {
          for await (const m of c.messages()) yield m as T;
        } catch (e) {
          // a stream this side cancelled just ends, as with grpc-js's client
          if (e instanceof RpcError && e.code === CANCELLED) return;
          throw e;
        }
      }
      return { messages: iterate(), cancel: c.cancel };
    },
    duplex<T>(service: ServiceName, name: string, o: CallOptions = {}) {
      const c = start(service, name, o, undefined);
      const { stream } = c;
      return {
        messages: c.messages() as AsyncGenerator<T>,
        write: (msg: object) =>
          new Promise<void>((resolve) => {
            // a failed call resolves at once: the error comes out of `messages`
            if (stream.destroyed || stream.closed || stream.write(frame(method(service, name)!.encode(msg)))) return resolve();
            const done = (): void => {
              stream.off('drain', done);
              stream.off('close', done);
              resolve();
            };
            stream.on('drain', done);
            stream.on('close', done);
          }),
        end: () => {
          if (!stream.destroyed && !stream.writableEnded) stream.end();
        },
        cancel: c.cancel,
      };
    },
    close() {
      // calls still open are abandoned (a stream nobody reads would keep the connection forever)
      closed = true;
      for (const s of open) s.close(NGHTTP2_CANCEL);
      session?.close();
    },
  };
}
