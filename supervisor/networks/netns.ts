/*
 * Network namespaces owned by tsrund: each one is an empty file under `<state>/netns/` with the
 * namespace bind-mounted onto it, so it outlives every process in it and a container joins it by
 * path (linux.namespaces[network].path). util-linux `unshare --net=FILE ip link set lo up` makes
 * the namespace, the bind and brings lo up in one step (node cannot unshare: it is
 * multi-threaded); `umount` releases it.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { TsrunError } from '../../spec/errors';

const run = promisify(execFile);
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** True when `file` is a mount point of an nsfs file (a live, persisted namespace). */
export function isNsMount(file: string): boolean {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const abs = path.resolve(file);
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f[sep + 1] !== 'nsfs') continue;
    if (unescapeMountPath(f[4] ?? '') === abs) return true;
  }
  return false;
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Make a new network namespace persisted at `<dir>/<name>`; returns its path. */
export async function createNetns(dir: string, name: string): Promise<string> {
  if (!NAME_RE.test(name)) throw new TsrunError('InvalidArgument', `network namespace name ${JSON.stringify(name)}: not a plain file name`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, name);
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDONLY, 0o444));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new TsrunError('AlreadyExists', `network namespace ${file}: already exists`);
    throw new TsrunError('Internal', `create network namespace file ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    // lo comes up in the same step (what the CNI loopback plugin would do, without its process).
    await run('unshare', [`--net=${file}`, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (e) {
    fs.rmSync(file, { force: true });
    const msg = ((e as { stderr?: string }).stderr ?? '').trim() || (e as Error).message;
    throw new TsrunError('Internal', `create network namespace ${file}: ${msg}`, { cause: e });
  }
  return file;
}

/** Release a namespace made by createNetns (unmount, then remove the file); a missing one is fine. */
export async function removeNetns(file: string): Promise<void> {
  if (fs.existsSync(file) && isNsMount(file)) {
    try {
      await run('umount', [file]);
    } catch (e) {
      // Gone between the check and the umount: nothing left to release.
      if (isNsMount(file)) {
        const msg = ((e as { stderr?: string }).stderr ?? '').trim() || (e as Error).message;
        throw new TsrunError('Internal', `release network namespace ${file}: ${msg}`, { cause: e });
      }
    }
  }
  fs.rmSync(file, { force: true });
}

/** The namespace files under `dir`. */
export function listNetns(dir: string): string[] {
  try {
    return fs.readdirSync(dir).map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}
