/**
 * A small client for Kubernetes' CRI (`runtime.v1.RuntimeService`, what kubelet speaks to
 * containerd's CRI plugin), for tests and the bench: unary calls by method name with plain
 * objects in and out.
 *
 * The proto text below is ours: the subset of k8s.io/cri-api's runtime/v1/api.proto the tests
 * use, with upstream's package, service, method and message names and field numbers (only
 * numbers and wire types matter on the wire; fields we never send or read are left out, and
 * protobuf skips unknown fields). Enums decode to their names ("CONTAINER_RUNNING"), int64 to
 * numbers, unset fields to their proto3 defaults.
 */
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

const CRI_PROTO = `
syntax = "proto3";
package runtime.v1;

service RuntimeService {
  rpc Version(VersionRequest) returns (VersionResponse) {}
  rpc RunPodSandbox(RunPodSandboxRequest) returns (RunPodSandboxResponse) {}
  rpc StopPodSandbox(StopPodSandboxRequest) returns (StopPodSandboxResponse) {}
  rpc RemovePodSandbox(RemovePodSandboxRequest) returns (RemovePodSandboxResponse) {}
  rpc PodSandboxStatus(PodSandboxStatusRequest) returns (PodSandboxStatusResponse) {}
  rpc ListPodSandbox(ListPodSandboxRequest) returns (ListPodSandboxResponse) {}
  rpc CreateContainer(CreateContainerRequest) returns (CreateContainerResponse) {}
  rpc StartContainer(StartContainerRequest) returns (StartContainerResponse) {}
  rpc StopContainer(StopContainerRequest) returns (StopContainerResponse) {}
  rpc RemoveContainer(RemoveContainerRequest) returns (RemoveContainerResponse) {}
  rpc ListContainers(ListContainersRequest) returns (ListContainersResponse) {}
  rpc ContainerStatus(ContainerStatusRequest) returns (ContainerStatusResponse) {}
  rpc ExecSync(ExecSyncRequest) returns (ExecSyncResponse) {}
}

message VersionRequest { string version = 1; }
message VersionResponse { string version = 1; string runtime_name = 2; string runtime_version = 3; string runtime_api_version = 4; }

enum NamespaceMode { POD = 0; CONTAINER = 1; NODE = 2; TARGET = 3; }
message NamespaceOption { NamespaceMode network = 1; NamespaceMode pid = 2; NamespaceMode ipc = 3; string target_id = 4; }
message SecurityProfile {
  enum ProfileType { RuntimeDefault = 0; Unconfined = 1; Localhost = 2; }
  ProfileType profile_type = 1;
  string localhost_ref = 2;
}
message LinuxSandboxSecurityContext { NamespaceOption namespace_options = 1; SecurityProfile seccomp = 9; }
message LinuxPodSandboxConfig { string cgroup_parent = 1; LinuxSandboxSecurityContext security_context = 2; }
message PodSandboxMetadata { string name = 1; string uid = 2; string namespace = 3; uint32 attempt = 4; }
message PodSandboxConfig {
  PodSandboxMetadata metadata = 1; string hostname = 2; string log_directory = 3;
  map<string, string> labels = 6; map<string, string> annotations = 7; LinuxPodSandboxConfig linux = 8;
}
message RunPodSandboxRequest { PodSandboxConfig config = 1; string runtime_handler = 2; }
message RunPodSandboxResponse { string pod_sandbox_id = 1; }
message StopPodSandboxRequest { string pod_sandbox_id = 1; }
message StopPodSandboxResponse {}
message RemovePodSandboxRequest { string pod_sandbox_id = 1; }
message RemovePodSandboxResponse {}
message PodSandboxStatusRequest { string pod_sandbox_id = 1; bool verbose = 2; }
message PodIP { string ip = 1; }
message PodSandboxNetworkStatus { string ip = 1; repeated PodIP additional_ips = 2; }
enum PodSandboxState { SANDBOX_READY = 0; SANDBOX_NOTREADY = 1; }
message PodSandboxStatus {
  string id = 1; PodSandboxMetadata metadata = 2; PodSandboxState state = 3; int64 created_at = 4;
  PodSandboxNetworkStatus network = 5; string runtime_handler = 9;
}
message PodSandboxStatusResponse { PodSandboxStatus status = 1; map<string, string> info = 2; }
message PodSandboxFilter { string id = 1; }
message ListPodSandboxRequest { PodSandboxFilter filter = 1; }
message PodSandbox { string id = 1; PodSandboxMetadata metadata = 2; PodSandboxState state = 3; string runtime_handler = 7; }
message ListPodSandboxResponse { repeated PodSandbox items = 1; }

message ImageSpec { string image = 1; }
message KeyValue { string key = 1; string value = 2; }
message LinuxContainerResources { int64 memory_limit_in_bytes = 4; int64 oom_score_adj = 5; }
message LinuxContainerSecurityContext { NamespaceOption namespace_options = 3; SecurityProfile seccomp = 15; }
message LinuxContainerConfig { LinuxContainerResources resources = 1; LinuxContainerSecurityContext security_context = 2; }
message ContainerMetadata { string name = 1; uint32 attempt = 2; }
message ContainerConfig {
  ContainerMetadata metadata = 1; ImageSpec image = 2; repeated string command = 3; repeated string args = 4;
  string working_dir = 5; repeated KeyValue envs = 6; map<string, string> labels = 9; string log_path = 11;
  LinuxContainerConfig linux = 15;
}
message CreateContainerRequest { string pod_sandbox_id = 1; ContainerConfig config = 2; PodSandboxConfig sandbox_config = 3; }
message CreateContainerResponse { string container_id = 1; }
message StartContainerRequest { string container_id = 1; }
message StartContainerResponse {}
message StopContainerRequest { string container_id = 1; int64 timeout = 2; }
message StopContainerResponse {}
message RemoveContainerRequest { string container_id = 1; }
message RemoveContainerResponse {}
enum ContainerState { CONTAINER_CREATED = 0; CONTAINER_RUNNING = 1; CONTAINER_EXITED = 2; CONTAINER_UNKNOWN = 3; }
message ContainerFilter { string id = 1; string pod_sandbox_id = 3; }
message ListContainersRequest { ContainerFilter filter = 1; }
message Container { string id = 1; string pod_sandbox_id = 2; ContainerMetadata metadata = 3; ContainerState state = 6; }
message ListContainersResponse { repeated Container containers = 1; }
message ContainerStatusRequest { string container_id = 1; bool verbose = 2; }
message ContainerStatus {
  string id = 1; ContainerMetadata metadata = 2; ContainerState state = 3; int64 created_at = 4;
  int64 started_at = 5; int64 finished_at = 6; int32 exit_code = 7; string reason = 10;
  string message = 11; string log_path = 15;
}
message ContainerStatusResponse { ContainerStatus status = 1; map<string, string> info = 2; }
message ExecSyncRequest { string container_id = 1; repeated string cmd = 2; int64 timeout = 3; }
message ExecSyncResponse { bytes stdout = 1; bytes stderr = 2; int32 exit_code = 3; }
`;

const SERVICE = 'runtime.v1.RuntimeService';

/** The RuntimeService methods this client knows. */
export type CriMethod =
  | 'Version'
  | 'RunPodSandbox'
  | 'StopPodSandbox'
  | 'RemovePodSandbox'
  | 'PodSandboxStatus'
  | 'ListPodSandbox'
  | 'CreateContainer'
  | 'StartContainer'
  | 'StopContainer'
  | 'RemoveContainer'
  | 'ListContainers'
  | 'ContainerStatus'
  | 'ExecSync';

/** A failed CRI call: the gRPC status and the server's message, with the method named. */
export class CriError extends Error {
  constructor(
    readonly method: CriMethod,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`CRI ${method}: ${grpc.status[code] ?? code}: ${details}`);
  }
}

/** ContainerStatus as decoded. */
export interface CriContainerStatus {
  id: string;
  state: 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
  exitCode: number;
  reason: string;
  message: string;
  logPath: string;
  startedAt: number;
  finishedAt: number;
}

/** ExecSync's answer. */
export interface CriExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** A connection to a CRI socket. */
export interface CriClient {
  call<T = Record<string, unknown>>(method: CriMethod, req?: object, timeoutMs?: number): Promise<T>;
  close(): void;
}

let root: protobuf.Root | undefined;

function criRoot(): protobuf.Root {
  if (root === undefined) {
    root = protobuf.parse(CRI_PROTO, new protobuf.Root(), { keepCase: false }).root;
    root.resolveAll();
  }
  return root;
}

/** Connect to the CRI endpoint at unix socket `socket` (the connection is made on the first call). */
export function connectCri(socket: string): CriClient {
  const service = criRoot().lookupService(SERVICE);
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  return {
    call<T>(method: CriMethod, req: object = {}, timeoutMs = 120_000): Promise<T> {
      const m = service.methods[method];
      if (m === undefined) return Promise.reject(new Error(`CRI ${method}: not in the client's proto`));
      const reqType = m.resolvedRequestType!;
      const resType = m.resolvedResponseType!;
      return new Promise<T>((resolve, reject) => {
        client.makeUnaryRequest(
          `/${SERVICE}/${method}`,
          (v: object) => Buffer.from(reqType.encode(reqType.fromObject(v as Record<string, unknown>)).finish()),
          (b: Buffer) => resType.toObject(resType.decode(b), { defaults: true, longs: Number, enums: String }),
          req,
          new grpc.Metadata(),
          { deadline: Date.now() + timeoutMs },
          (err: grpc.ServiceError | null, res?: Record<string, unknown>) => {
            if (err !== null) reject(new CriError(method, err.code, err.details));
            else resolve(res as T);
          },
        );
      });
    },
    close: () => client.close(),
  };
}
