/*
 * The image half of containerd 1.6's v1 API: Content, Images, Snapshots and Diff, plus the image,
 * content and snapshot events. Written by us with containerd's packages, names and field numbers
 * (only numbers and wire types matter); appended to the registry by proto/schema.ts.
 */

const content = `
syntax = "proto3";
package containerd.services.content.v1;
service Content {
  rpc Info(InfoRequest) returns (InfoResponse);
  rpc Update(UpdateRequest) returns (UpdateResponse);
  rpc List(ListContentRequest) returns (stream ListContentResponse);
  rpc Delete(DeleteContentRequest) returns (google.protobuf.Empty);
  rpc Read(ReadContentRequest) returns (stream ReadContentResponse);
  rpc Status(StatusRequest) returns (StatusResponse);
  rpc ListStatuses(ListStatusesRequest) returns (ListStatusesResponse);
  rpc Write(stream WriteContentRequest) returns (stream WriteContentResponse);
  rpc Abort(AbortRequest) returns (google.protobuf.Empty);
}
message Info {
  string digest = 1; int64 size = 2; google.protobuf.Timestamp created_at = 3; google.protobuf.Timestamp updated_at = 4;
  map<string, string> labels = 5;
}
message InfoRequest { string digest = 1; }
message InfoResponse { Info info = 1; }
message UpdateRequest { Info info = 1; google.protobuf.FieldMask update_mask = 2; }
message UpdateResponse { Info info = 1; }
message ListContentRequest { repeated string filters = 1; }
message ListContentResponse { repeated Info info = 1; }
message DeleteContentRequest { string digest = 1; }
message ReadContentRequest { string digest = 1; int64 offset = 2; int64 size = 3; }
message ReadContentResponse { int64 offset = 1; bytes data = 2; }
message Status {
  google.protobuf.Timestamp started_at = 1; google.protobuf.Timestamp updated_at = 2; string ref = 3;
  int64 offset = 4; int64 total = 5; string expected = 6;
}
message StatusRequest { string ref = 1; }
message StatusResponse { Status status = 1; }
message ListStatusesRequest { repeated string filters = 1; }
message ListStatusesResponse { repeated Status statuses = 1; }
enum WriteAction { STAT = 0; WRITE = 1; COMMIT = 2; }
message WriteContentRequest {
  WriteAction action = 1; string ref = 2; int64 total = 3; string expected = 4; int64 offset = 5; bytes data = 6;
  map<string, string> labels = 7;
}
message WriteContentResponse {
  WriteAction action = 1; google.protobuf.Timestamp started_at = 2; google.protobuf.Timestamp updated_at = 3;
  int64 offset = 4; int64 total = 5; string digest = 6;
}
message AbortRequest { string ref = 1; }
`;

const images = `
syntax = "proto3";
package containerd.services.images.v1;
service Images {
  rpc Get(GetImageRequest) returns (GetImageResponse);
  rpc List(ListImagesRequest) returns (ListImagesResponse);
  rpc Create(CreateImageRequest) returns (CreateImageResponse);
  rpc Update(UpdateImageRequest) returns (UpdateImageResponse);
  rpc Delete(DeleteImageRequest) returns (google.protobuf.Empty);
}
message Image {
  string name = 1; map<string, string> labels = 2; containerd.types.Descriptor target = 3;
  google.protobuf.Timestamp created_at = 7; google.protobuf.Timestamp updated_at = 8;
}
message GetImageRequest { string name = 1; }
message GetImageResponse { Image image = 1; }
message CreateImageRequest { Image image = 1; }
message CreateImageResponse { Image image = 1; }
message UpdateImageRequest { Image image = 1; google.protobuf.FieldMask update_mask = 2; }
message UpdateImageResponse { Image image = 1; }
message ListImagesRequest { repeated string filters = 1; }
message ListImagesResponse { repeated Image images = 1; }
message DeleteImageRequest { string name = 1; bool sync = 2; }
message ImageCreate { string name = 1; map<string, string> labels = 2; }
message ImageUpdate { string name = 1; map<string, string> labels = 2; }
message ImageDelete { string name = 1; }
`;

const snapshots = `
syntax = "proto3";
package containerd.services.snapshots.v1;
service Snapshots {
  rpc Prepare(PrepareSnapshotRequest) returns (PrepareSnapshotResponse);
  rpc View(ViewSnapshotRequest) returns (ViewSnapshotResponse);
  rpc Mounts(MountsRequest) returns (MountsResponse);
  rpc Commit(CommitSnapshotRequest) returns (google.protobuf.Empty);
  rpc Remove(RemoveSnapshotRequest) returns (google.protobuf.Empty);
  rpc Stat(StatSnapshotRequest) returns (StatSnapshotResponse);
  rpc Update(UpdateSnapshotRequest) returns (UpdateSnapshotResponse);
  rpc List(ListSnapshotsRequest) returns (stream ListSnapshotsResponse);
  rpc Usage(UsageRequest) returns (UsageResponse);
  rpc Cleanup(CleanupRequest) returns (google.protobuf.Empty);
}
message PrepareSnapshotRequest { string snapshotter = 1; string key = 2; string parent = 3; map<string, string> labels = 4; }
message PrepareSnapshotResponse { repeated containerd.types.Mount mounts = 1; }
message ViewSnapshotRequest { string snapshotter = 1; string key = 2; string parent = 3; map<string, string> labels = 4; }
message ViewSnapshotResponse { repeated containerd.types.Mount mounts = 1; }
message MountsRequest { string snapshotter = 1; string key = 2; }
message MountsResponse { repeated containerd.types.Mount mounts = 1; }
message RemoveSnapshotRequest { string snapshotter = 1; string key = 2; }
message CommitSnapshotRequest { string snapshotter = 1; string name = 2; string key = 3; map<string, string> labels = 4; }
message StatSnapshotRequest { string snapshotter = 1; string key = 2; }
enum Kind { UNKNOWN = 0; VIEW = 1; ACTIVE = 2; COMMITTED = 3; }
message Info {
  string name = 1; string parent = 2; Kind kind = 3; google.protobuf.Timestamp created_at = 4;
  google.protobuf.Timestamp updated_at = 5; map<string, string> labels = 6;
}
message StatSnapshotResponse { Info info = 1; }
message UpdateSnapshotRequest { string snapshotter = 1; Info info = 2; google.protobuf.FieldMask update_mask = 3; }
message UpdateSnapshotResponse { Info info = 1; }
message ListSnapshotsRequest { string snapshotter = 1; repeated string filters = 2; }
message ListSnapshotsResponse { repeated Info info = 1; }
message UsageRequest { string snapshotter = 1; string key = 2; }
message UsageResponse { int64 size = 1; int64 inodes = 2; }
message CleanupRequest { string snapshotter = 1; }
`;

const diff = `
syntax = "proto3";
package containerd.services.diff.v1;
service Diff {
  rpc Apply(ApplyRequest) returns (ApplyResponse);
  rpc Diff(DiffRequest) returns (DiffResponse);
}
message ApplyRequest {
  containerd.types.Descriptor diff = 1; repeated containerd.types.Mount mounts = 2;
  map<string, google.protobuf.Any> payloads = 3;
}
message ApplyResponse { containerd.types.Descriptor applied = 1; }
message DiffRequest {
  repeated containerd.types.Mount left = 1; repeated containerd.types.Mount right = 2; string media_type = 3;
  string ref = 4; map<string, string> labels = 5;
}
message DiffResponse { containerd.types.Descriptor diff = 3; }
`;

/** containerd.events for content and snapshots (1.6: no snapshotter field yet). */
const imageEvents = `
syntax = "proto3";
package containerd.events;
message ContentDelete { string digest = 1; }
message SnapshotPrepare { string key = 1; string parent = 2; }
message SnapshotCommit { string key = 1; string name = 2; }
message SnapshotRemove { string key = 1; }
`;

/** The image services' proto texts, in dependency order (after the well-known and containerd.types texts). */
export const imageProtoTexts: readonly string[] = [content, images, snapshots, diff, imageEvents];
