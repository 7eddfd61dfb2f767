/*
 * Entry names made safe. A layer's names are relative to the layer root; containerd and docker both
 * read an absolute name as relative to the root (Go's filepath.Join(root, "/etc/x") is root/etc/x),
 * so a leading "/" is dropped here too rather than refusing layers those engines accept. A ".."
 * component is refused outright, even one that would stay inside (a/../b): layers made by walking a
 * file system never contain one, and refusing is simpler to reason about than clamping.
 */
import { TsrunError } from '../../spec/errors';

/** The error for an entry the extractor will not write. */
export function refused(entry: string, why: string): TsrunError {
  return new TsrunError('PermissionDenied', `apply layer entry "${entry}": refused: ${why}`);
}

/**
 * The components of an entry name relative to the root ([] is the root itself). `what` names the
 * field for the error ("name" or "link target").
 */
export function entryComponents(entry: string, name: string, what: string): string[] {
  if (name.includes('\0')) throw refused(entry, `${what} contains a NUL byte`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refused(entry, `${what} "${name}" has a ".." component, which could leave the layer root`);
  return parts;
}
