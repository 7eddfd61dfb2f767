/*
 * A small typed gRPC client for tsrund (and containerd): one connection, promise-returning unary
 * calls by service and method name, server streams as async iterables, the namespace header
 * added to every call. Used by tests; tsctl shares its interface, RpcError and
 * SERVICES but makes its calls without grpc-js (tsctl/h2-client.ts, docs/tsctl.md).
 *
 *   const c = connectTsrund('/run/tsrund/tsrund.sock', { namespace: 'default' });
 *   const { process } = await c.call('Tasks', 'Get', { containerId: 'web' });
 */
import type * as grpc from '@grpc/grpc-js';
import { TsrunError, type ErrorCode } from '../spec/errors';
import * as protobuf from 'protobufjs';
import { serviceDefinition } from './grpc/definition';
import { serviceType } from './proto/index';

let grpcModule: typeof grpc | undefined;

/**
 * grpc-js, loaded on first use: its modules load node's http2, which a V8 startup snapshot cannot
 * hold, so tsctl's snapshot (supervisor/tsctl/startup/) is built without it.
 */
function grpcJs(): typeof grpc {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  grpcModule ??= require('@grpc/grpc-js') as typeof grpc;
  return grpcModule;
}

/** Short service names and their full proto names. */
export const SERVICES = {
  Version: 'containerd.services.version.v1.Version',
  Introspection: 'containerd.services.introspection.v1.Introspection',
  Namespaces: 'containerd.services.namespaces.v1.Namespaces',
  Leases: 'containerd.services.leases.v1.Leases',
  Containers: 'containerd.services.containers.v1.Containers',
  Tasks: 'containerd.services.tasks.v1.Tasks',
  Events: 'containerd.services.events.v1.Events',
  Images: 'containerd.services.images.v1.Images',
  Content: 'containerd.services.content.v1.Content',
  Snapshots: 'containerd.services.snapshots.v1.Snapshots',
  Diff: 'containerd.services.diff.v1.Diff',
  Volumes: 'tsrun.services.volumes.v1.Volumes',
  Networks: 'tsrun.services.networks.v1.Networks',
  Transfer: 'tsrun.services.transfer.v1.Transfer',
} as const;

/** A service's short name. */
export type ServiceName = keyof typeof SERVICES;

/** Per-call options. */
export interface CallOptions {
  /** overrides the client's namespace; "" sends no header */
  namespace?: string;
  /** deadline in ms from now */
  timeoutMs?: number;
  /** a lease id: content and snapshots the call makes join it (containerd-lease header) */
  lease?: string;
}

/** gRPC status code names, by code (grpc-js's status enum, without loading grpc-js for it). */
const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** A gRPC failure: the status code and message as the server sent them. */
export class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`${STATUS_NAMES[code] ?? code}: ${details}`);
  }

  /** The project's error code for this status (Internal for codes outside the set). */
  errorCode(): ErrorCode {
    switch (STATUS_NAMES[this.code]) {
      case 'NOT_FOUND':
        return 'NotFound';
      case 'ALREADY_EXISTS':
        return 'AlreadyExists';
      case 'INVALID_ARGUMENT':
        return 'InvalidArgument';
      case 'FAILED_PRECONDITION':
        return 'FailedPrecondition';
      case 'PERMISSION_DENIED':
        return 'PermissionDenied';
      case 'UNAVAILABLE':
        return 'Unavailable';
      default:
        return 'Internal';
    }
  }

  /** Is this UNIMPLEMENTED (a server without the method or service)? */
  isUnimplemented(): boolean {
    return STATUS_NAMES[this.code] === 'UNIMPLEMENTED';
  }

  /** As a TsrunError (for tsctl's CLI edge). */
  toTsrunError(): TsrunError {
    return new TsrunError(this.errorCode(), this.details, { cause: this });
  }
}

/** A connection to tsrund. Requests and responses are plain objects with camelCase field names. */
export interface TsrundClient {
  call<T = Record<string, unknown>>(service: ServiceName, method: string, req?: object, opts?: CallOptions): Promise<T>;
  /** a server stream (Events.Subscribe); `cancel` ends it */
  stream<T = Record<string, unknown>>(
    service: ServiceName,
    method: string,
    req?: object,
    opts?: CallOptions,
  ): { messages: AsyncIterable<T>; cancel(): void };
  /** a bidirectional stream: `write` resolves once the message may be followed by more (flow control) */
  duplex<T = Record<string, unknown>>(
    service: ServiceName,
    method: string,
    opts?: CallOptions,
  ): { messages: AsyncIterable<T>; write(msg: object): Promise<void>; end(): void; cancel(): void };
  close(): void;
}

type Ctor = ReturnType<typeof grpc.makeGenericClientConstructor>;
const ctors = new Map<string, Ctor>();

function ctor(service: ServiceName): Ctor {
  let c = ctors.get(service);
  if (c === undefined) {
    c = grpcJs().makeGenericClientConstructor(serviceDefinition(SERVICES[service]), service);
    ctors.set(service, c);
  }
  return c;
}

/**
 * Resolve every service's methods, and generate protobufjs's encoders and decoders of the
 * messages `methods` ("Service.Method") send and receive, with the messages inside them; without
 * grpc-js or a connection: what tsctl's startup snapshot captures (supervisor/tsctl/startup/), so
 * the calls of a command on its hot path do not pay for them. Only those: a snapshot costs every
 * start by its size, and the code of a message costs more to load from it than the rare command
 * that needs it pays to generate it. An unknown method throws (the build fails, not the warm-up).
 */
export function warmClient(methods: readonly string[]): void {
  for (const service of Object.keys(SERVICES) as ServiceName[]) serviceDefinition(SERVICES[service]);
  const done = new Set<protobuf.Type>();
  // protobufjs generates a type's code on its first encode or decode; setup() does it now
  const setup = (t: protobuf.Type): void => {
    if (done.has(t)) return;
    done.add(t);
    t.setup();
    // setup() also generates verify, fromObject and toObject, which tsctl's calls do not use
    // (h2-client.ts encodes and decodes); without them the prototype's set-up-on-first-use versions
    // answer (generating all five again), and the snapshot holds two functions a message, not five
    for (const k of ['verify', 'fromObject', 'toObject']) delete (t as unknown as Record<string, unknown>)[k];
    for (const f of t.fieldsArray) {
      const ft = f.resolve().resolvedType;
      if (ft instanceof protobuf.Type) setup(ft);
    }
  };
  for (const name of methods) {
    const [service, method] = name.split('.') as [string, string];
    const m = Object.hasOwn(SERVICES, service) ? serviceType(SERVICES[service as ServiceName]).methods[method] : undefined;
    if (m === undefined) throw new Error(`warmClient: no method ${name}`);
    m.resolve();
    setup(m.resolvedRequestType!);
    setup(m.resolvedResponseType!);
  }
}

/** Connect to the tsrund (or containerd) socket at `socketPath`. */
export function connectTsrund(socketPath: string, opts: { namespace?: string } = {}): TsrundClient {
  const address = socketPath.startsWith('unix:') ? socketPath : `unix://${socketPath}`;
  const creds = grpcJs().credentials.createInsecure();
  const channelOpts = { 'grpc.max_receive_message_length': 16 << 20, 'grpc.max_send_message_length': 16 << 20 };
  const clients = new Map<ServiceName, grpc.Client>();
  // One channel for every service: the first client's channel is shared through channelOverride.
  let channel: grpc.Channel | undefined;
  const client = (service: ServiceName): grpc.Client & Record<string, unknown> => {
    let c = clients.get(service);
    if (c === undefined) {
      const C = ctor(service);
      c = channel === undefined ? new C(address, creds, channelOpts) : new C(address, creds, { ...channelOpts, channelOverride: channel });
      channel ??= c.getChannel() as grpc.Channel;
      clients.set(service, c);
    }
    return c as grpc.Client & Record<string, unknown>;
  };
  const metadata = (o: CallOptions = {}): grpc.Metadata => {
    const md = new (grpcJs().Metadata)();
    const ns = o.namespace ?? opts.namespace ?? 'default';
    if (ns !== '') md.set('containerd-namespace', ns);
    if (o.lease !== undefined && o.lease !== '') md.set('containerd-lease', o.lease);
    return md;
  };
  const callOptions = (o: CallOptions = {}): grpc.CallOptions =>
    o.timeoutMs === undefined ? {} : { deadline: Date.now() + o.timeoutMs };
  return {
    call(service, method, req = {}, o = {}) {
      const c = client(service);
      const fn = c[method] as
        | ((r: object, md: grpc.Metadata, co: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: unknown) => void) => void)
        | undefined;
      if (typeof fn !== 'function') return Promise.reject(new Error(`no method ${service}.${method}`));
      return new Promise((resolve, reject) => {
        fn.call(c, req, metadata(o), callOptions(o), (err, res) => {
          if (err !== null) reject(new RpcError(err.code, err.details));
          else resolve(res as never);
        });
      });
    },
    stream(service, method, req = {}, o = {}) {
      const c = client(service);
      const fn = c[method] as ((r: object, md: grpc.Metadata, co: grpc.CallOptions) => grpc.ClientReadableStream<unknown>) | undefined;
      if (typeof fn !== 'function') throw new Error(`no method ${service}.${method}`);
      const call = fn.call(c, req, metadata(o), callOptions(o));
      async function* iterate(): AsyncGenerator<never> {
        try {
          for await (const m of call) yield m as never;
        } catch (e) {
          const se = e as grpc.ServiceError;
          if (se.code === grpcJs().status.CANCELLED) return;
          throw new RpcError(se.code, se.details);
        }
      }
      return { messages: iterate(), cancel: () => call.cancel() };
    },
    duplex(service, method, o = {}) {
      const c = client(service);
      const fn = c[method] as ((md: grpc.Metadata, co: grpc.CallOptions) => grpc.ClientDuplexStream<object, unknown>) | undefined;
      if (typeof fn !== 'function') throw new Error(`no method ${service}.${method}`);
      const call = fn.call(c, metadata(o), callOptions(o));
      let failed = false;
      call.on('error', () => {
        failed = true;
      });
      async function* iterate(): AsyncGenerator<never> {
        try {
          for await (const m of call) yield m as never;
        } catch (e) {
          const se = e as grpc.ServiceError;
          throw new RpcError(se.code, se.details);
        }
      }
      return {
        messages: iterate(),
        write: (msg) =>
          new Promise<void>((resolve) => {
            // a failed call resolves at once: the error comes out of `messages`
            if (failed || call.write(msg)) return resolve();
            const done = (): void => {
              call.off('drain', done);
              call.off('error', done);
              resolve();
            };
            call.on('drain', done);
            call.on('error', done);
          }),
        end: () => call.end(),
        cancel: () => call.cancel(),
      };
    },
    close() {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}
