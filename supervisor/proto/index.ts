/*
 * The protobuf registry of tsrund: every message of proto/schema.ts parsed once into one
 * protobufjs Root, plus the helpers the wire needs and off-the-shelf libraries get wrong for
 * containerd:
 *
 *   Any        {type_url, value} with a *bare* type URL (no type.googleapis.com/ prefix), packed
 *              and unpacked here; the OCI spec and process are JSON inside Any, everything else
 *              protobuf.
 *   Timestamp  int64 seconds may be negative: Go's zero time is -62135596800 s (0001-01-01),
 *              which ctr sends on Container.created_at and expects back as a running process's
 *              exited_at. protobufjs decodes int64 as Long; `fromTimestamp` makes it a number
 *              (exact: |seconds| < 2^53).
 *
 * Decoded messages are protobufjs instances: unset fields read as their proto3 default from the
 * prototype (strings "", numbers 0, maps {}, repeated [], messages null).
 */
import * as protobuf from 'protobufjs';
import { descriptor } from './descriptor';

let root: protobuf.Root | undefined;
const typeCache = new Map<string, protobuf.Type>();

/**
 * The registry holding every message and service tsrund speaks: schema.ts's texts, parsed at
 * build time into descriptor.ts (`make gen`).
 */
export function protoRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const r = protobuf.Root.fromJSON(descriptor);
  r.resolveAll();
  root = r;
  return r;
}

/** The message type with this full name (no leading dot), e.g. "containerd.events.TaskExit". */
export function messageType(name: string): protobuf.Type {
  let t = typeCache.get(name);
  if (t === undefined) {
    t = protoRoot().lookupType(name);
    typeCache.set(name, t);
  }
  return t;
}

/** The service with this full name, e.g. "containerd.services.tasks.v1.Tasks". */
export function serviceType(name: string): protobuf.Service {
  return protoRoot().lookupService(name);
}

/** Encode a plain object as the named message. */
export function encode(name: string, value: object): Buffer {
  const t = messageType(name);
  const bytes = t.encode(value as Record<string, unknown>).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decode bytes as the named message; unset fields read as proto3 defaults. */
export function decode<T>(name: string, bytes: Uint8Array): T {
  return messageType(name).decode(bytes) as unknown as T;
}

/** google.protobuf.Any as tsrund handles it: a bare type URL and the raw value bytes. */
export interface AnyValue {
  typeUrl: string;
  value: Uint8Array;
}

/** Pack a message of `name` into an Any whose type URL is the bare message name, as containerd's typeurl does. */
export function packAny(name: string, value: object): AnyValue {
  return { typeUrl: name, value: encode(name, value) };
}

/** Decode the Any's value as its named message (the type URL, with any prefix dropped, names it). */
export function unpackAny<T>(any: AnyValue): T {
  return decode<T>(bareTypeUrl(any.typeUrl), any.value);
}

/** A type URL without a `type.googleapis.com/`-style prefix for protobuf names (JSON type URLs kept). */
export function bareTypeUrl(url: string): string {
  if (url.startsWith('types.containerd.io/')) return url;
  const slash = url.lastIndexOf('/');
  return slash < 0 ? url : url.slice(slash + 1);
}

/** Type URL of the OCI runtime spec JSON inside Container.spec. */
export const SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
/** Type URL of the OCI process JSON inside ExecProcessRequest.spec. */
export const PROCESS_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';

/** A point in time as protobuf carries it; seconds may be negative. */
export interface Timestamp {
  seconds: number;
  nanos: number;
}

/** Go's zero time.Time (0001-01-01T00:00:00Z), which Go always encodes for non-nullable timestamps. */
export const ZERO_TIME: Timestamp = { seconds: -62135596800, nanos: 0 };

/** What protobufjs hands back for an int64: a number or a Long. */
export type Int64 = number | { toNumber(): number };

/** A decoded Timestamp (seconds as Long or number, possibly null) as a plain Timestamp; absent → zero time. */
export function fromTimestamp(t: { seconds: Int64; nanos: number } | null | undefined): Timestamp {
  if (t === null || t === undefined) return { ...ZERO_TIME };
  const s = typeof t.seconds === 'number' ? t.seconds : t.seconds.toNumber();
  return { seconds: s, nanos: t.nanos };
}

/** The current time with nanosecond digits from hrtime. */
export function now(): Timestamp {
  const ms = Date.now();
  const seconds = Math.floor(ms / 1000);
  const sub = Number(process.hrtime.bigint() % 1_000_000n);
  return { seconds, nanos: (ms % 1000) * 1_000_000 + sub };
}

/** An RFC 3339 time with up to nanosecond digits ("2024-05-01T10:00:00.123456789Z") as a Timestamp. */
export function parseRfc3339(text: string): Timestamp {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (m === null) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) return { ...ZERO_TIME };
    return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
  }
  const ms = Date.parse(`${m[1] ?? ''}${m[3] ?? 'Z'}`);
  if (Number.isNaN(ms)) return { ...ZERO_TIME };
  const frac = (m[2] ?? '').padEnd(9, '0');
  return { seconds: Math.floor(ms / 1000), nanos: Number(frac) };
}

/** A Timestamp as RFC 3339 with nine fractional digits. */
export function formatRfc3339(t: Timestamp): string {
  const base = new Date(t.seconds * 1000).toISOString().slice(0, 19);
  return `${base}.${String(t.nanos).padStart(9, '0')}Z`;
}

/** A Timestamp as sortable text for the store ("<seconds>.<nanos 9 digits>"). */
export function timestampText(t: Timestamp): string {
  return `${t.seconds}.${String(t.nanos).padStart(9, '0')}`;
}

/** The inverse of `timestampText`. */
export function timestampFromText(text: string): Timestamp {
  const dot = text.indexOf('.');
  if (dot < 0) return { seconds: Number(text), nanos: 0 };
  return { seconds: Number(text.slice(0, dot)), nanos: Number(text.slice(dot + 1)) };
}

/** An unsigned 64-bit value for protobufjs from a bigint, a decimal string or a number (exact beyond 2^53). */
export function u64(v: bigint | string | number | undefined): { low: number; high: number; unsigned: true } | number {
  if (v === undefined) return 0;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  let b: bigint;
  try {
    b = BigInt(v);
  } catch {
    return 0;
  }
  b = BigInt.asUintN(64, b);
  return { low: Number(b & 0xffffffffn) | 0, high: Number(b >> 32n) | 0, unsigned: true };
}
