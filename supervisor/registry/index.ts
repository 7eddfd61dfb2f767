/*
 * The registry client's public surface: parse a reference, make a client, pull into or push
 * from a BlobStore. See docs/registry.md.
 */
export { basicAuthorization, defaultDockerConfigPath, loadCredentials, parseChallenges, type Challenge, type Credentials } from './auth';
export { RegistryClient, type ClientOptions } from './client';
export { DirBlobStore, digestOf, readBlob, writeBlob, type BlobReader, type BlobStore, type BlobWriter, type Expected } from './content';
export { shortId, type BlobKind, type ProgressEvent, type ProgressFn, type ProgressState } from './fetch';
export { MediaType, parseManifest, type Descriptor, type ImageIndex, type ImageManifest, type Platform } from './manifest';
export { formatPlatform, hostPlatform, parsePlatform, selectManifest } from './platform';
export { fetchManifest, pull, resolve, type PulledImage, type PullOptions } from './pull';
export { push, type PushOptions } from './push';
export { familiarReference, formatReference, parseReference, repositoryName, type Reference } from './reference';
export { isLoopbackHost, type TransportOptions } from './transport';
