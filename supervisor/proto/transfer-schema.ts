/*
 * tsrun's own transfer service (not a containerd API; containerd 1.6 pulls in the client): tsctl
 * pull and push run inside tsrund, which holds the content store, as docker's daemon does. The
 * caller sends the registry credentials it read from its docker config.json (docker's
 * X-Registry-Auth) and gets a stream of per-layer progress ending with one `done` message.
 * Load takes an image archive (docker-archive or OCI) as a stream of chunks and answers one
 * `loaded` message per image.
 */
export const transferProtoText = `
syntax = "proto3";
package tsrun.services.transfer.v1;
service Transfer {
  rpc Pull(PullRequest) returns (stream TransferProgress);
  rpc Push(PushRequest) returns (stream TransferProgress);
  rpc Load(stream LoadRequest) returns (stream TransferProgress);
}
message LoadRequest { bytes data = 1; }
message RegistryAuth { string username = 1; string password = 2; }
message PullRequest { string reference = 1; string platform = 2; RegistryAuth auth = 3; }
message PushRequest { string name = 1; string reference = 2; RegistryAuth auth = 3; }
message TransferProgress {
  string id = 1; string state = 2; int64 current = 3; int64 total = 4; string kind = 5;
  string image = 6; string digest = 7; bool newer = 8; int64 size = 9;
}
`;
