/*
 * TypeScript shapes of the decoded messages tsrund reads (field names camelCased by protobufjs)
 * and of the values it builds. Decoded messages carry proto3 defaults, so scalars, maps and
 * repeated fields are always present; message fields may be null.
 */
import type { AnyValue, Int64 } from './index';

/** A decoded google.protobuf.Timestamp. */
export interface WireTimestamp {
  seconds: Int64;
  nanos: number;
}

/** A decoded google.protobuf.FieldMask. */
export interface WireFieldMask {
  paths: string[];
}

/** containerd.services.namespaces.v1.Namespace */
export interface WireNamespace {
  name: string;
  labels: Record<string, string>;
}

/** containerd.services.containers.v1.Container */
export interface WireContainer {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: { name: string; options: AnyValue | null } | null;
  spec: AnyValue | null;
  snapshotter: string;
  snapshotKey: string;
  createdAt: WireTimestamp | null;
  updatedAt: WireTimestamp | null;
  extensions: Record<string, AnyValue>;
}

/** containerd.runc.v1.Options */
export interface RuncOptions {
  noPivotRoot: boolean;
  noNewKeyring: boolean;
  shimCgroup: string;
  ioUid: number;
  ioGid: number;
  binaryName: string;
  root: string;
  criuPath: string;
  systemdCgroup: boolean;
}

/** containerd.services.tasks.v1.CreateTaskRequest */
export interface CreateTaskRequest {
  containerId: string;
  rootfs: Array<{ type: string; source: string; target: string; options: string[] }>;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  checkpoint: { digest: string } | null;
  options: AnyValue | null;
  runtimePath: string;
}

/** Requests naming a process: container id plus optional exec id. */
export interface ProcessRequest {
  containerId: string;
  execId: string;
}

/** containerd.services.tasks.v1.KillRequest */
export interface KillRequest extends ProcessRequest {
  signal: number;
  all: boolean;
}

/** containerd.services.tasks.v1.ExecProcessRequest */
export interface ExecProcessRequest extends ProcessRequest {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  spec: AnyValue | null;
}

/** containerd.services.tasks.v1.ResizePtyRequest */
export interface ResizePtyRequest extends ProcessRequest {
  width: number;
  height: number;
}

/** containerd.services.tasks.v1.CloseIORequest */
export interface CloseIORequest extends ProcessRequest {
  stdin: boolean;
}

/** containerd.services.tasks.v1.UpdateTaskRequest */
export interface UpdateTaskRequest {
  containerId: string;
  resources: AnyValue | null;
  annotations: Record<string, string>;
}

/** Requests carrying a list of containerd filter strings. */
export interface FiltersRequest {
  filters: string[];
}

/** containerd.v1.types.Status */
export const TaskStatus = { UNKNOWN: 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5 } as const;
