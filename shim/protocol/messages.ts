/*
 * The shim's wire messages, defined with protobufjs reflection (a JSON descriptor) so the same
 * definitions load under ts-node and inside the esbuild bundle, with no .proto file to ship.
 *
 *   Frame { id, request | response | event }          one frame = u32 big-endian length + Frame bytes
 *     Request  { method, exec_id, signal, all, process_json, stdio, width, height, resources_json }
 *     Response { error_code, error_message, pid, exit, processes[], pids[], json, namespace, id, shim_pid }
 *     Event    { type: "exit" | "oom" | "exec-started", exit, exec_id, pid }
 *
 * An empty exec_id names the container's init (containerd never allows an empty exec id).
 * docs/shim-protocol.md describes the methods and the event rules.
 */
import { Root, type Type } from 'protobufjs/light';

const descriptor = {
  nested: {
    tsrunshim: {
      nested: {
        Stdio: {
          fields: {
            stdin: { type: 'string', id: 1 },
            stdout: { type: 'string', id: 2 },
            stderr: { type: 'string', id: 3 },
            terminal: { type: 'bool', id: 4 },
          },
        },
        Exit: {
          fields: {
            execId: { type: 'string', id: 1 },
            pid: { type: 'uint32', id: 2 },
            exitStatus: { type: 'uint32', id: 3 },
            exitedAt: { type: 'string', id: 4 },
          },
        },
        ProcState: {
          fields: {
            execId: { type: 'string', id: 1 },
            pid: { type: 'uint32', id: 2 },
            status: { type: 'string', id: 3 },
            stdio: { type: 'Stdio', id: 4 },
            hasExit: { type: 'bool', id: 5 },
            exitStatus: { type: 'uint32', id: 6 },
            exitedAt: { type: 'string', id: 7 },
          },
        },
        PidInfo: {
          fields: {
            pid: { type: 'uint32', id: 1 },
            execId: { type: 'string', id: 2 },
          },
        },
        Request: {
          fields: {
            method: { type: 'string', id: 1 },
            execId: { type: 'string', id: 2 },
            signal: { type: 'uint32', id: 3 },
            all: { type: 'bool', id: 4 },
            processJson: { type: 'bytes', id: 5 },
            stdio: { type: 'Stdio', id: 6 },
            width: { type: 'uint32', id: 7 },
            height: { type: 'uint32', id: 8 },
            resourcesJson: { type: 'bytes', id: 9 },
          },
        },
        Response: {
          fields: {
            errorCode: { type: 'string', id: 1 },
            errorMessage: { type: 'string', id: 2 },
            pid: { type: 'uint32', id: 3 },
            exit: { type: 'Exit', id: 4 },
            processes: { rule: 'repeated', type: 'ProcState', id: 5 },
            pids: { rule: 'repeated', type: 'PidInfo', id: 6 },
            json: { type: 'bytes', id: 7 },
            namespace: { type: 'string', id: 8 },
            id: { type: 'string', id: 9 },
            shimPid: { type: 'uint32', id: 10 },
          },
        },
        Event: {
          fields: {
            type: { type: 'string', id: 1 },
            exit: { type: 'Exit', id: 2 },
            execId: { type: 'string', id: 3 },
            pid: { type: 'uint32', id: 4 },
          },
        },
        Frame: {
          oneofs: { kind: { oneof: ['request', 'response', 'event'] } },
          fields: {
            id: { type: 'uint32', id: 1 },
            request: { type: 'Request', id: 2 },
            response: { type: 'Response', id: 3 },
            event: { type: 'Event', id: 4 },
          },
        },
      },
    },
  },
};

/** Methods a client may call; `hello` names the shim, `subscribe` asks for events (and the buffered ones). */
export const METHODS = [
  'hello', 'subscribe', 'create', 'start', 'wait', 'state', 'list', 'kill', 'exec', 'resizePty', 'closeStdin',
  'pause', 'resume', 'pids', 'stats', 'update', 'deleteProcess', 'delete',
] as const;

/** One method name. */
export type Method = (typeof METHODS)[number];

/** Stdio on the wire. */
export interface WireStdio {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** An exit on the wire (execId "" is init). */
export interface WireExit {
  execId: string;
  pid: number;
  exitStatus: number;
  exitedAt: string;
}

/** A process state on the wire. */
export interface WireProcState {
  execId: string;
  pid: number;
  status: string;
  stdio?: WireStdio;
  hasExit: boolean;
  exitStatus: number;
  exitedAt: string;
}

/** A request: method plus whichever arguments it takes. */
export interface WireRequest {
  method: string;
  execId?: string;
  signal?: number;
  all?: boolean;
  processJson?: Uint8Array;
  stdio?: WireStdio;
  width?: number;
  height?: number;
  resourcesJson?: Uint8Array;
}

/** A response: an error (errorCode set) or the results the method has. */
export interface WireResponse {
  errorCode?: string;
  errorMessage?: string;
  pid?: number;
  exit?: WireExit;
  processes?: WireProcState[];
  pids?: Array<{ pid: number; execId?: string }>;
  json?: Uint8Array;
  namespace?: string;
  id?: string;
  shimPid?: number;
}

/** A pushed event. */
export interface WireEvent {
  type: string;
  exit?: WireExit;
  execId?: string;
  pid?: number;
}

/** One frame: a request from a client, its response (same id), or an event (id 0). */
export interface WireFrame {
  id: number;
  request?: WireRequest;
  response?: WireResponse;
  event?: WireEvent;
}

let frameType: Type | undefined;

function frame(): Type {
  frameType ??= Root.fromJSON(descriptor).lookupType('tsrunshim.Frame');
  return frameType;
}

/** Serialise one frame (without its length prefix). */
export function encodeFrame(f: WireFrame): Uint8Array {
  const t = frame();
  return t.encode(t.fromObject(f)).finish();
}

/** Parse one frame; fields left out come back with their proto3 defaults. */
export function decodeFrame(bytes: Uint8Array): WireFrame {
  const t = frame();
  const o = t.toObject(t.decode(bytes), { defaults: true, arrays: true, bytes: Buffer as unknown as typeof String, oneofs: false }) as Record<string, unknown>;
  const out: WireFrame = { id: Number(o['id'] ?? 0) };
  if (o['request']) out.request = o['request'] as WireRequest;
  if (o['response']) out.response = o['response'] as WireResponse;
  if (o['event']) out.event = o['event'] as WireEvent;
  return out;
}
