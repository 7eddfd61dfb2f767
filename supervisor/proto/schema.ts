/*
 * The wire contract of tsrund: containerd v1.6's gRPC API (the subset in
 * docs/containerd-api.md §3–4), written by us as proto3 text with containerd's
 * package, service, method and message names and field numbers. Only numbers and wire types
 * matter for compatibility; names are kept for readability and for the `:path` of each call.
 *
 * The text lives in a .ts module (not .proto files) so that the esbuild bundle and tap/ts-node
 * load it the same way; protobufjs parses it once at start-up (proto/index.ts).
 */

import { imageProtoTexts } from './images-schema';
import { networksProto } from './networks-schema';
import { transferProtoText } from './transfer-schema';

/** google.protobuf well-known types (bare names: Any type URLs are never prefixed here). */
const wellKnown = `
syntax = "proto3";
package google.protobuf;
message Empty {}
message Any { string type_url = 1; bytes value = 2; }
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
message FieldMask { repeated string paths = 1; }
`;

/** containerd.types: mounts, descriptors, metrics. */
const types = `
syntax = "proto3";
package containerd.types;
message Mount { string type = 1; string source = 2; string target = 3; repeated string options = 4; }
message Descriptor { string media_type = 1; string digest = 2; int64 size = 3; map<string, string> annotations = 5; }
message Metric { google.protobuf.Timestamp timestamp = 1; string id = 2; google.protobuf.Any data = 3; }
`;

/** containerd.v1.types (sic): the task process view. */
const task = `
syntax = "proto3";
package containerd.v1.types;
enum Status { UNKNOWN = 0; CREATED = 1; RUNNING = 2; STOPPED = 3; PAUSED = 4; PAUSING = 5; }
message Process {
  string container_id = 1; string id = 2; uint32 pid = 3; Status status = 4;
  string stdin = 5; string stdout = 6; string stderr = 7; bool terminal = 8;
  uint32 exit_status = 9; google.protobuf.Timestamp exited_at = 10;
}
message ProcessInfo { uint32 pid = 1; google.protobuf.Any info = 2; }
`;

const version = `
syntax = "proto3";
package containerd.services.version.v1;
service Version { rpc Version(google.protobuf.Empty) returns (VersionResponse); }
message VersionResponse { string version = 1; string revision = 2; }
`;

const introspection = `
syntax = "proto3";
package containerd.services.introspection.v1;
service Introspection { rpc Server(google.protobuf.Empty) returns (ServerResponse); }
message ServerResponse { string uuid = 1; }
`;

const namespaces = `
syntax = "proto3";
package containerd.services.namespaces.v1;
service Namespaces {
  rpc Get(GetNamespaceRequest) returns (GetNamespaceResponse);
  rpc List(ListNamespacesRequest) returns (ListNamespacesResponse);
  rpc Create(CreateNamespaceRequest) returns (CreateNamespaceResponse);
  rpc Update(UpdateNamespaceRequest) returns (UpdateNamespaceResponse);
  rpc Delete(DeleteNamespaceRequest) returns (google.protobuf.Empty);
}
message Namespace { string name = 1; map<string, string> labels = 2; }
message GetNamespaceRequest { string name = 1; }
message GetNamespaceResponse { Namespace namespace = 1; }
message ListNamespacesRequest { string filter = 1; }
message ListNamespacesResponse { repeated Namespace namespaces = 1; }
message CreateNamespaceRequest { Namespace namespace = 1; }
message CreateNamespaceResponse { Namespace namespace = 1; }
message UpdateNamespaceRequest { Namespace namespace = 1; google.protobuf.FieldMask update_mask = 2; }
message UpdateNamespaceResponse { Namespace namespace = 1; }
message DeleteNamespaceRequest { string name = 1; }
`;

const leases = `
syntax = "proto3";
package containerd.services.leases.v1;
service Leases {
  rpc Create(CreateRequest) returns (CreateResponse);
  rpc Delete(DeleteRequest) returns (google.protobuf.Empty);
  rpc List(ListRequest) returns (ListResponse);
  rpc AddResource(AddResourceRequest) returns (google.protobuf.Empty);
  rpc DeleteResource(DeleteResourceRequest) returns (google.protobuf.Empty);
  rpc ListResources(ListResourcesRequest) returns (ListResourcesResponse);
}
message Lease { string id = 1; google.protobuf.Timestamp created_at = 2; map<string, string> labels = 3; }
message CreateRequest { string id = 1; map<string, string> labels = 3; }
message CreateResponse { Lease lease = 1; }
message DeleteRequest { string id = 1; bool sync = 2; }
message ListRequest { repeated string filters = 1; }
message ListResponse { repeated Lease leases = 1; }
message Resource { string id = 1; string type = 2; }
message AddResourceRequest { string id = 1; Resource resource = 2; }
message DeleteResourceRequest { string id = 1; Resource resource = 2; }
message ListResourcesRequest { string id = 1; }
message ListResourcesResponse { repeated Resource resources = 1; }
`;

const containers = `
syntax = "proto3";
package containerd.services.containers.v1;
service Containers {
  rpc Get(GetContainerRequest) returns (GetContainerResponse);
  rpc List(ListContainersRequest) returns (ListContainersResponse);
  rpc ListStream(ListContainersRequest) returns (stream ListContainerMessage);
  rpc Create(CreateContainerRequest) returns (CreateContainerResponse);
  rpc Update(UpdateContainerRequest) returns (UpdateContainerResponse);
  rpc Delete(DeleteContainerRequest) returns (google.protobuf.Empty);
}
message Container {
  message Runtime { string name = 1; google.protobuf.Any options = 2; }
  string id = 1; map<string, string> labels = 2; string image = 3; Runtime runtime = 4;
  google.protobuf.Any spec = 5; string snapshotter = 6; string snapshot_key = 7;
  google.protobuf.Timestamp created_at = 8; google.protobuf.Timestamp updated_at = 9;
  map<string, google.protobuf.Any> extensions = 10;
}
message GetContainerRequest { string id = 1; }
message GetContainerResponse { Container container = 1; }
message ListContainersRequest { repeated string filters = 1; }
message ListContainersResponse { repeated Container containers = 1; }
message CreateContainerRequest { Container container = 1; }
message CreateContainerResponse { Container container = 1; }
message UpdateContainerRequest { Container container = 1; google.protobuf.FieldMask update_mask = 2; }
message UpdateContainerResponse { Container container = 1; }
message DeleteContainerRequest { string id = 1; }
message ListContainerMessage { Container container = 1; }
`;

const tasks = `
syntax = "proto3";
package containerd.services.tasks.v1;
service Tasks {
  rpc Create(CreateTaskRequest) returns (CreateTaskResponse);
  rpc Start(StartRequest) returns (StartResponse);
  rpc Delete(DeleteTaskRequest) returns (DeleteResponse);
  rpc DeleteProcess(DeleteProcessRequest) returns (DeleteResponse);
  rpc Get(GetRequest) returns (GetResponse);
  rpc List(ListTasksRequest) returns (ListTasksResponse);
  rpc Kill(KillRequest) returns (google.protobuf.Empty);
  rpc Exec(ExecProcessRequest) returns (google.protobuf.Empty);
  rpc ResizePty(ResizePtyRequest) returns (google.protobuf.Empty);
  rpc CloseIO(CloseIORequest) returns (google.protobuf.Empty);
  rpc Pause(PauseTaskRequest) returns (google.protobuf.Empty);
  rpc Resume(ResumeTaskRequest) returns (google.protobuf.Empty);
  rpc ListPids(ListPidsRequest) returns (ListPidsResponse);
  rpc Checkpoint(CheckpointTaskRequest) returns (CheckpointTaskResponse);
  rpc Update(UpdateTaskRequest) returns (google.protobuf.Empty);
  rpc Metrics(MetricsRequest) returns (MetricsResponse);
  rpc Wait(WaitRequest) returns (WaitResponse);
}
message CreateTaskRequest {
  string container_id = 1; repeated containerd.types.Mount rootfs = 3;
  string stdin = 4; string stdout = 5; string stderr = 6; bool terminal = 7;
  containerd.types.Descriptor checkpoint = 8; google.protobuf.Any options = 9; string runtime_path = 10;
}
message CreateTaskResponse { string container_id = 1; uint32 pid = 2; }
message StartRequest { string container_id = 1; string exec_id = 2; }
message StartResponse { uint32 pid = 1; }
message DeleteTaskRequest { string container_id = 1; }
message DeleteResponse { string id = 1; uint32 pid = 2; uint32 exit_status = 3; google.protobuf.Timestamp exited_at = 4; }
message DeleteProcessRequest { string container_id = 1; string exec_id = 2; }
message GetRequest { string container_id = 1; string exec_id = 2; }
message GetResponse { containerd.v1.types.Process process = 1; }
message ListTasksRequest { string filter = 1; }
message ListTasksResponse { repeated containerd.v1.types.Process tasks = 1; }
message KillRequest { string container_id = 1; string exec_id = 2; uint32 signal = 3; bool all = 4; }
message ExecProcessRequest {
  string container_id = 1; string stdin = 2; string stdout = 3; string stderr = 4; bool terminal = 5;
  google.protobuf.Any spec = 6; string exec_id = 7;
}
message ResizePtyRequest { string container_id = 1; string exec_id = 2; uint32 width = 3; uint32 height = 4; }
message CloseIORequest { string container_id = 1; string exec_id = 2; bool stdin = 3; }
message PauseTaskRequest { string container_id = 1; }
message ResumeTaskRequest { string container_id = 1; }
message ListPidsRequest { string container_id = 1; }
message ListPidsResponse { repeated containerd.v1.types.ProcessInfo processes = 1; }
message CheckpointTaskRequest { string container_id = 1; string parent_checkpoint = 2; google.protobuf.Any options = 3; }
message CheckpointTaskResponse { repeated containerd.types.Descriptor descriptors = 1; }
message UpdateTaskRequest { string container_id = 1; google.protobuf.Any resources = 2; map<string, string> annotations = 3; }
message MetricsRequest { repeated string filters = 1; }
message MetricsResponse { repeated containerd.types.Metric metrics = 1; }
message WaitRequest { string container_id = 1; string exec_id = 2; }
message WaitResponse { uint32 exit_status = 1; google.protobuf.Timestamp exited_at = 2; }
`;

const events = `
syntax = "proto3";
package containerd.services.events.v1;
service Events {
  rpc Publish(PublishRequest) returns (google.protobuf.Empty);
  rpc Forward(ForwardRequest) returns (google.protobuf.Empty);
  rpc Subscribe(SubscribeRequest) returns (stream Envelope);
}
message PublishRequest { string topic = 1; google.protobuf.Any event = 2; }
message ForwardRequest { Envelope envelope = 1; }
message SubscribeRequest { repeated string filters = 1; }
message Envelope { google.protobuf.Timestamp timestamp = 1; string namespace = 2; string topic = 3; google.protobuf.Any event = 4; }
`;

/** containerd.events: the payloads of every topic tsrund publishes. */
const eventTypes = `
syntax = "proto3";
package containerd.events;
message NamespaceCreate { string name = 1; map<string, string> labels = 2; }
message NamespaceUpdate { string name = 1; map<string, string> labels = 2; }
message NamespaceDelete { string name = 1; }
message ContainerCreate {
  message Runtime { string name = 1; google.protobuf.Any options = 2; }
  string id = 1; string image = 2; Runtime runtime = 3;
}
message ContainerUpdate { string id = 1; string image = 2; map<string, string> labels = 3; string snapshot_key = 4; }
message ContainerDelete { string id = 1; }
message TaskIO { string stdin = 1; string stdout = 2; string stderr = 3; bool terminal = 4; }
message TaskCreate {
  string container_id = 1; string bundle = 2; repeated containerd.types.Mount rootfs = 3; TaskIO io = 4;
  string checkpoint = 5; uint32 pid = 6;
}
message TaskStart { string container_id = 1; uint32 pid = 2; }
message TaskDelete { string container_id = 1; uint32 pid = 2; uint32 exit_status = 3; google.protobuf.Timestamp exited_at = 4; string id = 5; }
message TaskExit { string container_id = 1; string id = 2; uint32 pid = 3; uint32 exit_status = 4; google.protobuf.Timestamp exited_at = 5; }
message TaskOOM { string container_id = 1; }
message TaskExecAdded { string container_id = 1; string exec_id = 2; }
message TaskExecStarted { string container_id = 1; string exec_id = 2; uint32 pid = 3; }
message TaskPaused { string container_id = 1; }
message TaskResumed { string container_id = 1; }
message TaskCheckpointed { string container_id = 1; string checkpoint = 2; }
`;

/** containerd.runc.v1: runtime options and the ListPids detail of exec processes. */
const runcOptions = `
syntax = "proto3";
package containerd.runc.v1;
message Options {
  bool no_pivot_root = 1; bool no_new_keyring = 2; string shim_cgroup = 3; uint32 io_uid = 4; uint32 io_gid = 5;
  string binary_name = 6; string root = 7; string criu_path = 8; bool systemd_cgroup = 9;
  string criu_image_path = 10; string criu_work_path = 11;
}
message ProcessDetails { string exec_id = 1; }
`;

/** io.containerd.cgroups.v1.Metrics (github.com/containerd/cgroups stats/v1), the fields we fill. */
const cgroupsV1 = `
syntax = "proto3";
package io.containerd.cgroups.v1;
message Metrics {
  repeated HugetlbStat hugetlb = 1; PidsStat pids = 2; CPUStat cpu = 3; MemoryStat memory = 4; BlkIOStat blkio = 5;
}
message HugetlbStat { uint64 usage = 1; uint64 max = 2; uint64 failcnt = 3; string pagesize = 4; }
message PidsStat { uint64 current = 1; uint64 limit = 2; }
message CPUStat { CPUUsage usage = 1; Throttle throttling = 2; }
message CPUUsage { uint64 total = 1; uint64 kernel = 2; uint64 user = 3; repeated uint64 per_cpu = 4; }
message Throttle { uint64 periods = 1; uint64 throttled_periods = 2; uint64 throttled_time = 3; }
message MemoryStat {
  uint64 cache = 1; uint64 rss = 2; uint64 rss_huge = 3; uint64 mapped_file = 4; uint64 dirty = 5; uint64 writeback = 6;
  uint64 pg_pg_in = 7; uint64 pg_pg_out = 8; uint64 pg_fault = 9; uint64 pg_maj_fault = 10; uint64 inactive_anon = 11;
  uint64 active_anon = 12; uint64 inactive_file = 13; uint64 active_file = 14; uint64 unevictable = 15;
  uint64 hierarchical_memory_limit = 16; uint64 hierarchical_swap_limit = 17; uint64 total_cache = 18; uint64 total_rss = 19;
  uint64 total_rss_huge = 20; uint64 total_mapped_file = 21; uint64 total_dirty = 22; uint64 total_writeback = 23;
  uint64 total_pg_pg_in = 24; uint64 total_pg_pg_out = 25; uint64 total_pg_fault = 26; uint64 total_pg_maj_fault = 27;
  uint64 total_inactive_anon = 28; uint64 total_active_anon = 29; uint64 total_inactive_file = 30;
  uint64 total_active_file = 31; uint64 total_unevictable = 32;
  MemoryEntry usage = 33; MemoryEntry swap = 34; MemoryEntry kernel = 35; MemoryEntry kernel_tcp = 36;
}
message MemoryEntry { uint64 limit = 1; uint64 usage = 2; uint64 max = 3; uint64 failcnt = 4; }
message BlkIOStat {
  repeated BlkIOEntry io_service_bytes_recursive = 1; repeated BlkIOEntry io_serviced_recursive = 2;
  repeated BlkIOEntry io_queued_recursive = 3; repeated BlkIOEntry io_service_time_recursive = 4;
  repeated BlkIOEntry io_wait_time_recursive = 5; repeated BlkIOEntry io_merged_recursive = 6;
  repeated BlkIOEntry io_time_recursive = 7; repeated BlkIOEntry sectors_recursive = 8;
}
message BlkIOEntry { string op = 1; string device = 2; uint64 major = 3; uint64 minor = 4; uint64 value = 5; }
`;

/** io.containerd.cgroups.v2.Metrics, for hosts with a unified hierarchy. */
const cgroupsV2 = `
syntax = "proto3";
package io.containerd.cgroups.v2;
message Metrics { PidsStat pids = 1; CPUStat cpu = 2; MemoryStat memory = 4; }
message PidsStat { uint64 current = 1; uint64 limit = 2; }
message CPUStat {
  uint64 usage_usec = 1; uint64 user_usec = 2; uint64 system_usec = 3; uint64 nr_periods = 4;
  uint64 nr_throttled = 5; uint64 throttled_usec = 6;
}
message MemoryStat { uint64 usage = 32; uint64 usage_limit = 33; uint64 swap_usage = 34; uint64 swap_limit = 35; }
`;

/**
 * tsrun's own volume service (not a containerd API: containerd has no volumes; tsctl uses it for
 * docker's `volume` commands and `-v NAME:/path`). Volumes are global, so the namespace header is
 * only used to find the containers that use one.
 */
const volumes = `
syntax = "proto3";
package tsrun.services.volumes.v1;
service Volumes {
  rpc Create(CreateVolumeRequest) returns (VolumeResponse);
  rpc Get(GetVolumeRequest) returns (VolumeResponse);
  rpc List(ListVolumesRequest) returns (ListVolumesResponse);
  rpc Remove(RemoveVolumeRequest) returns (google.protobuf.Empty);
  rpc Prune(PruneVolumesRequest) returns (PruneVolumesResponse);
  rpc Prepare(PrepareVolumeRequest) returns (VolumeResponse);
}
message Volume {
  string name = 1; string driver = 2; string mountpoint = 3; map<string, string> labels = 4;
  map<string, string> options = 5; bool anonymous = 6; google.protobuf.Timestamp created_at = 7;
  repeated string used_by = 8; uint64 size = 9;
}
message CreateVolumeRequest { string name = 1; map<string, string> labels = 2; map<string, string> options = 3; bool anonymous = 4; }
message GetVolumeRequest { string name = 1; bool size = 2; }
message VolumeResponse { Volume volume = 1; }
message ListVolumesRequest { repeated string filters = 1; }
message ListVolumesResponse { repeated Volume volumes = 1; }
message RemoveVolumeRequest { string name = 1; bool force = 2; }
message PruneVolumesRequest { bool all = 1; repeated string filters = 2; }
message PruneVolumesResponse { repeated string deleted = 1; uint64 space_reclaimed = 2; }
message PrepareVolumeRequest {
  string name = 1; bool anonymous = 2; map<string, string> labels = 3;
  string copy_rootfs = 4; string copy_path = 5;
}
`;

/** Every proto text, in dependency order (protobufjs resolves names once all are added). */
export const protoTexts: readonly string[] = [
  wellKnown,
  types,
  task,
  version,
  introspection,
  namespaces,
  leases,
  containers,
  tasks,
  events,
  eventTypes,
  runcOptions,
  cgroupsV1,
  cgroupsV2,
  ...imageProtoTexts,
  volumes,
  networksProto,
  transferProtoText,
];
