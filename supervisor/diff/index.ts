/*
 * Layers: apply a layer tar to a directory, write one from a snapshot's changes. docs/layers.md has
 * the formats, the whiteout conventions and the path-safety rules.
 */
export { applyLayer, type ApplyOptions, type ApplyResult } from './apply';
export { compressionOf, decompressor, digestStream, gzipStream, layerReadStream, type Compression, type DigestStream } from './compression';
export { writeDiff, type DiffSource } from './write';
