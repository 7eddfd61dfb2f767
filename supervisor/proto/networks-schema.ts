/*
 * tsrund's own networking API (not containerd's: containerd leaves networking to its clients).
 * tsctl calls Attach before Containers.Create and puts the returned namespace path and files
 * into the spec; tsrund detaches a container's network when the container record is deleted.
 * A background Attach answers before the CNI plugins ran; Tasks.Start of that container waits
 * for them (and fails with their error), so the plugins overlap with the container's create.
 * Namespaced calls (Attach, Connect, Disconnect, Detach, Inspect) take the containerd-namespace
 * header like containerd's services.
 */
export const networksProto = `
syntax = "proto3";
package tsrun.services.networks.v1;
message Network {
  string id = 1; string name = 2; string driver = 3; string subnet = 4; string gateway = 5; bool internal = 6;
  map<string, string> labels = 7; string bridge = 8; string created = 9;
}
message CreateNetworkRequest { string name = 1; string subnet = 2; string gateway = 3; bool internal = 4; map<string, string> labels = 5; string driver = 6; }
message NetworkResponse { Network network = 1; }
message GetNetworkRequest { string ref = 1; }
message ListNetworksRequest {}
message ListNetworksResponse { repeated Network networks = 1; }
message RemoveNetworkRequest { string ref = 1; }
message PruneNetworksResponse { repeated string removed = 1; }
message PortMapping { string host_ip = 1; uint32 host_port = 2; uint32 container_port = 3; string protocol = 4; }
message EndpointRequest { string network = 1; string ip = 2; string mac = 3; repeated string aliases = 4; }
message Endpoint {
  string network = 1; string network_id = 2; string if_name = 3; string ip = 4; uint32 prefix_len = 5;
  string gateway = 6; string mac = 7; repeated string aliases = 8;
}
message Attachment {
  string id = 1; string name = 2; string hostname = 3; string netns = 4; repeated Endpoint endpoints = 5;
  repeated PortMapping ports = 6; string files_dir = 7;
}
message AttachRequest {
  string id = 1; string name = 2; string hostname = 3; repeated EndpointRequest endpoints = 4; repeated PortMapping ports = 5;
  repeated string dns = 6; repeated string dns_search = 7; repeated string dns_options = 8; repeated string extra_hosts = 9;
  // answer once the namespace and files exist; the plugins run on, and the task's Start waits for them
  bool background = 10;
}
message AttachmentResponse { Attachment attachment = 1; }
message ListAttachmentsResponse { repeated Attachment attachments = 1; }
message ContainerRef { string id = 1; }
message ConnectRequest { string id = 1; EndpointRequest endpoint = 2; }
message DisconnectRequest { string id = 1; string network = 2; }
service Networks {
  rpc Create(CreateNetworkRequest) returns (NetworkResponse);
  rpc Get(GetNetworkRequest) returns (NetworkResponse);
  rpc List(ListNetworksRequest) returns (ListNetworksResponse);
  rpc Remove(RemoveNetworkRequest) returns (google.protobuf.Empty);
  rpc Prune(google.protobuf.Empty) returns (PruneNetworksResponse);
  rpc Attach(AttachRequest) returns (AttachmentResponse);
  rpc Connect(ConnectRequest) returns (AttachmentResponse);
  rpc Disconnect(DisconnectRequest) returns (AttachmentResponse);
  rpc Detach(ContainerRef) returns (google.protobuf.Empty);
  rpc Inspect(ContainerRef) returns (AttachmentResponse);
  rpc ListAttachments(google.protobuf.Empty) returns (ListAttachmentsResponse);
}
`;
