/*
 * A service's grpc-js definition from the protobufjs reflection of proto/schema.ts: each method's
 * path is /<package>.<Service>/<Method>, its messages encoded and decoded with protobufjs. Shared
 * by tsrund's server (server.ts) and the client (../client.ts). It names grpc-js only as types, so
 * tsctl's startup snapshot can hold it without grpc-js, whose http2 a snapshot cannot hold.
 */
import type * as grpc from '@grpc/grpc-js';
import { serviceType } from '../proto/index';

/** The grpc-js service definition of the service with this full name. */
export function serviceDefinition(name: string): grpc.ServiceDefinition {
  const svc = serviceType(name);
  const def: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const m of svc.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    def[m.name] = {
      path: `/${name}/${m.name}`,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      requestSerialize: (v: object) => Buffer.from(req.encode(v).finish()),
      requestDeserialize: (b: Buffer) => req.decode(b),
      responseSerialize: (v: object) => Buffer.from(res.encode(v).finish()),
      responseDeserialize: (b: Buffer) => res.decode(b),
      originalName: m.name,
    };
  }
  return def as grpc.ServiceDefinition;
}
