/*
 * supervisor/proto/descriptor.ts from the proto texts of supervisor/proto/schema.ts: the parsed
 * registry as protobufjs JSON, which tsrund and tsctl load with Root.fromJSON at start-up instead
 * of parsing the texts (parsing is the slower of the two, and every tsctl command pays it).
 * The texts stay the definition; `make check-generated` fails when the descriptor is stale.
 */
import * as protobuf from 'protobufjs';
import { protoTexts } from '../supervisor/proto/schema';

/** The text of supervisor/proto/descriptor.ts. */
export function renderProtoDescriptor(): string {
  const r = new protobuf.Root();
  for (const text of protoTexts) protobuf.parse(text, r, { keepCase: false });
  r.resolveAll();
  // A string for JSON.parse rather than an object literal: V8 parses JSON text faster than the
  // same data as JavaScript.
  const json = JSON.stringify(r.toJSON());
  return [
    '// Generated from supervisor/proto/schema.ts by scripts/gen-proto.ts. Do not edit; run `make gen`.',
    '',
    "import type { INamespace } from 'protobufjs';",
    '',
    '/** Every message and service of schema.ts, as protobufjs JSON (Root.fromJSON). */',
    `export const descriptor = JSON.parse(${JSON.stringify(json)}) as INamespace;`,
    '',
  ].join('\n');
}
