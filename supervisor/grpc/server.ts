/*
 * The gRPC edge of tsrund.
 *
 *   client ──connect──▶ net.Server on <socket> (mode 0600)
 *                          │ SO_PEERCRED: uid 0 or tsrund's own uid, else the connection is closed
 *                          ▼
 *                      grpc-js Server.createConnectionInjector ── h2c ──▶ handlers
 *
 * Services are registered from the protobufjs reflection of proto/schema.ts: each method's path is
 * /<package>.<Service>/<Method>, messages are encoded and decoded with protobufjs. Handlers get the
 * decoded request and an RpcContext (namespace header, cancellation); they return the response
 * object or throw. TsrunError codes become gRPC codes here and nowhere else.
 */
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import type * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import { TsrunError, type ErrorCode } from '../../spec/errors';
import { errors, identifierProblem } from '../errors';
import type { Logger } from '../log';
import { serviceType } from '../proto/index';
import { peerCredentials } from './peer-cred';
import { serviceDefinition } from './definition';

/** What a handler knows about the call besides its request. */
export interface RpcContext {
  /** the containerd-namespace header, validated; throws FailedPrecondition "namespace is required" without it */
  namespace(): string;
  /** the header as sent, "" when absent */
  readonly rawNamespace: string;
  /** the containerd-lease header ("" when absent): content and snapshots made in the call join that lease */
  readonly lease: string;
  readonly cancelled: boolean;
  onCancel(fn: () => void): void;
}

/** A unary method: request in, response out (or a throw). */
export type Unary = (req: never, ctx: RpcContext) => unknown;
/** A server-streaming method: `write` each message; resolve to end the stream. */
export type ServerStream = (req: never, ctx: RpcContext, write: (msg: object) => void) => Promise<void>;

/** A bidirectional method (Content.Write): read `requests` in order, `write` answers; resolve to end. */
export type BidiStream = (requests: AsyncIterable<never>, ctx: RpcContext, write: (msg: object) => void) => Promise<void>;

/** One service's handlers by method name; methods not listed answer UNIMPLEMENTED. */
export interface ServiceImpl {
  readonly service: string;
  readonly unary?: Record<string, Unary>;
  readonly stream?: Record<string, ServerStream>;
  readonly bidi?: Record<string, BidiStream>;
}

/** A status a service adapter answers with directly (only the edge uses gRPC codes). */
export class RpcStatus extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

const CODES: Record<ErrorCode, grpc.status> = {
  NotFound: grpc.status.NOT_FOUND,
  AlreadyExists: grpc.status.ALREADY_EXISTS,
  InvalidArgument: grpc.status.INVALID_ARGUMENT,
  FailedPrecondition: grpc.status.FAILED_PRECONDITION,
  PermissionDenied: grpc.status.PERMISSION_DENIED,
  Unavailable: grpc.status.UNAVAILABLE,
  // containerd answers Unknown for errors outside its classes
  Internal: grpc.status.UNKNOWN,
};

/** The gRPC status for anything a handler threw. */
export function toStatus(e: unknown): { code: grpc.status; details: string } {
  if (e instanceof RpcStatus) return { code: e.code, details: e.message };
  if (e instanceof TsrunError) return { code: CODES[e.code], details: e.fullMessage() };
  return { code: grpc.status.UNKNOWN, details: e instanceof Error ? e.message : String(e) };
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

function header(call: AnyCall, name: string): string {
  const raw = call.metadata.get(name)[0];
  return typeof raw === 'string' ? raw : raw === undefined ? '' : raw.toString();
}

function context(call: AnyCall): RpcContext {
  const ns = header(call, 'containerd-namespace');
  return {
    rawNamespace: ns,
    lease: header(call, 'containerd-lease'),
    namespace() {
      if (ns === '') throw errors.namespaceRequired();
      const problem = identifierProblem(ns);
      if (problem !== undefined) throw errors.invalid(`namespace validation: ${problem}`);
      return ns;
    },
    get cancelled() {
      return call.cancelled;
    },
    onCancel(fn) {
      (call as grpc.ServerUnaryCall<unknown, unknown>).on('cancelled', fn);
    },
  };
}

/**
 * A duplex call's requests as an async iterable that, unlike the stream's own iterator, does not
 * destroy the call when the handler stops early (the error status must still go out).
 */
function requestsOf(call: grpc.ServerDuplexStream<unknown, object>): AsyncIterable<unknown> {
  const queue: unknown[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  call.on('data', (m: unknown) => {
    queue.push(m);
    if (queue.length >= 8) call.pause();
    poke();
  });
  call.on('end', () => {
    ended = true;
    poke();
  });
  call.on('cancelled', () => {
    ended = true;
    poke();
  });
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length > 0) {
          const m = queue.shift();
          if (queue.length < 4) call.resume();
          yield m;
          continue;
        }
        if (ended) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}

function implementation(impl: ServiceImpl, log: Logger): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  const svc = serviceType(impl.service);
  for (const m of svc.methodsArray) {
    const unary = impl.unary?.[m.name];
    const stream = impl.stream?.[m.name];
    const bidi = impl.bidi?.[m.name];
    const where = `${impl.service}/${m.name}`;
    if (m.requestStream === true && m.responseStream === true) {
      out[m.name] = (call: grpc.ServerDuplexStream<unknown, object>) => {
        if (bidi === undefined) {
          call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: `${where} not implemented` });
          return;
        }
        bidi(requestsOf(call) as AsyncIterable<never>, context(call), (msg) => call.write(msg)).then(
          () => call.end(),
          (e: unknown) => {
            const s = toStatus(e);
            log.debug('rpc failed', { method: where, code: s.code, error: s.details });
            call.emit('error', s);
          },
        );
      };
    } else if (m.responseStream === true) {
      out[m.name] = (call: grpc.ServerWritableStream<unknown, object>) => {
        if (stream === undefined) {
          call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: `${where} not implemented` });
          return;
        }
        if (log.tracing) log.trace('rpc stream', { method: where });
        stream(call.request as never, context(call), (msg) => call.write(msg)).then(
          () => call.end(),
          (e: unknown) => {
            const s = toStatus(e);
            log.debug('rpc failed', { method: where, code: s.code, error: s.details });
            call.emit('error', s);
          },
        );
      };
    } else {
      out[m.name] = (call: grpc.ServerUnaryCall<unknown, object>, cb: grpc.sendUnaryData<object>) => {
        if (unary === undefined) {
          cb({ code: grpc.status.UNIMPLEMENTED, details: `${where} not implemented` });
          return;
        }
        const started = log.tracing ? process.hrtime.bigint() : 0n;
        const done = (err: unknown, res?: unknown): void => {
          if (log.tracing) log.trace('rpc', { method: where, ms: Number(process.hrtime.bigint() - started) / 1e6 });
          if (err === undefined) {
            cb(null, res as object);
          } else {
            const s = toStatus(err);
            if (s.code === grpc.status.UNKNOWN) log.warn('rpc failed', { method: where, error: s.details });
            else log.debug('rpc failed', { method: where, code: s.code, error: s.details });
            cb(s);
          }
        };
        try {
          const r = unary(call.request as never, context(call));
          if (r instanceof Promise) r.then((v) => done(undefined, v), (e: unknown) => done(e ?? new Error('rejected')));
          else done(undefined, r);
        } catch (e) {
          done(e ?? new Error('thrown'));
        }
      };
    }
  }
  return out;
}

/** A listening tsrund endpoint. */
export interface RunningServer {
  readonly socketPath: string;
  /** stop accepting, end open calls, remove the socket */
  close(): Promise<void>;
}

/** Options of `serve`. */
export interface ServeOptions {
  socketPath: string;
  /** uids allowed besides 0 (normally tsrund's own) */
  allowedUids: readonly number[];
  log: Logger;
}

async function isLive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * HTTP/2 receive windows for what clients send us (Content.Write's blobs). grpc-js leaves them at
 * HTTP/2's 64 KiB and offers no option, so a client had to wait for a WINDOW_UPDATE every 32 KiB:
 * ctr's 1 MiB write messages took some thirty round trips each, and an import or `ctr pull` spent
 * more time waiting for windows than writing. Go's gRPC grows its windows towards these sizes
 * itself (BDP estimation), containerd's server included. What a window lets a client send ahead
 * is bounded (a connection's window covers all its streams), so tsrund's memory stays bounded.
 */
const STREAM_WINDOW = 8 << 20;
const CONNECTION_WINDOW = 16 << 20;

function widenFlowControl(server: grpc.Server, log: Logger): void {
  // grpc-js keeps the http2 servers behind its injectors in a private map; without it (another
  // grpc-js) nothing changes but speed.
  const servers = (server as unknown as { http2Servers?: Map<http2.Http2Server, unknown> }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) {
    log.debug('grpc: http2 windows left at their defaults (grpc-js internals not as expected)');
    return;
  }
  for (const h2 of servers.keys()) {
    h2.on('session', (session: http2.ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(CONNECTION_WINDOW);
        session.settings({ initialWindowSize: STREAM_WINDOW });
      } catch (e) {
        log.debug('grpc: http2 windows not widened', { error: e instanceof Error ? e.message : String(e) });
      }
    });
  }
}

/** Listen on the unix socket and serve `impls` to callers whose peer credentials pass. */
export async function serve(opts: ServeOptions, impls: readonly ServiceImpl[]): Promise<RunningServer> {
  const { socketPath, log } = opts;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 16 << 20,
    'grpc.max_send_message_length': 16 << 20,
    // channelz keeps per-call counters and traces for a channelz service we do not serve: work on
    // every call for nothing.
    'grpc.enable_channelz': 0,
  });
  for (const impl of impls) server.addService(serviceDefinition(impl.service), implementation(impl, log));
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  widenFlowControl(server, log);

  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o711 });
  if (fs.existsSync(socketPath)) {
    if (await isLive(socketPath)) {
      throw new TsrunError('AlreadyExists', `listen ${socketPath}: another server is already listening there`);
    }
    fs.rmSync(socketPath, { force: true });
  }
  const allowed = new Set<number>([0, ...opts.allowedUids]);
  const listener = net.createServer({ pauseOnConnect: true }, (socket) => {
    const cred = peerCredentials(socket);
    if (cred === undefined || !allowed.has(cred.uid)) {
      log.warn('connection refused', { uid: cred?.uid ?? 'unknown', pid: cred?.pid ?? 'unknown', why: 'peer uid not allowed' });
      socket.destroy();
      return;
    }
    injector.injectConnection(socket);
    socket.resume();
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    // umask-proof: the socket is made, then narrowed before anyone is accepted (pauseOnConnect + peer check anyway)
    listener.listen(socketPath, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  fs.chmodSync(socketPath, 0o600);
  return {
    socketPath,
    async close() {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
      injector.destroy();
      server.forceShutdown();
      fs.rmSync(socketPath, { force: true });
    },
  };
}
