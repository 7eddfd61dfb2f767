/*
 * Which tasks tsrund has created: an empty file <shimRoot>/.tasks/<ns>/<id>, written after the
 * shim created the container and before Tasks.Create answers, removed when Tasks.Delete is done.
 *
 * A shim directory without its marker after a restart is a Create that tsrund died inside: no
 * client was told the task exists, so re-adoption deletes it (container, cgroup, shim, directory)
 * without a task record or an exit event, and the same id can be created again. The files live in
 * the volatile state directory beside the shims and are not fsynced: they only need to survive
 * the death of tsrund, not a reboot (which ends the containers too).
 *
 * `.tasks` cannot be a namespace (identifiers start with a letter or digit), and listShimDirs
 * skips it: its entries hold no options.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { wrapSystemError } from '../../spec/errors';

/** The task markers under one shim root. */
export interface TaskMarkers {
  /**
   * Make the marker directory; false when it did not exist yet (shim directories found then were
   * made by a tsrund that kept no markers, and are adopted as before).
   */
  ensure(): boolean;
  has(namespace: string, id: string): boolean;
  /** record a created task (throws on failure: the Create must then fail) */
  put(namespace: string, id: string): void;
  /** forget a task (missing is fine) */
  remove(namespace: string, id: string): void;
  /** every recorded task */
  list(): Array<{ namespace: string; id: string }>;
}

/** The markers of the tasks under `shimRoot`. */
export function taskMarkers(shimRoot: string): TaskMarkers {
  const root = path.join(shimRoot, '.tasks');
  const file = (ns: string, id: string): string => path.join(root, ns, id);
  return {
    ensure() {
      if (fs.existsSync(root)) return true;
      fs.mkdirSync(root, { recursive: true, mode: 0o700 });
      return false;
    },
    has: (ns, id) => fs.existsSync(file(ns, id)),
    put(ns, id) {
      const f = file(ns, id);
      // remove() of the namespace's last marker may take the directory away between the two
      // steps: then make it again
      for (let attempt = 1; ; attempt++) {
        try {
          fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
          fs.writeFileSync(f, '', { mode: 0o600 });
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw wrapSystemError(`record task ${ns}/${id} in ${f}`, err);
        }
      }
    },
    remove(ns, id) {
      const f = file(ns, id);
      fs.rmSync(f, { force: true });
      try {
        // the namespace's directory goes with its last task, as its shim directory does
        fs.rmdirSync(path.dirname(f));
      } catch {
        // not empty, or already gone
      }
    },
    list() {
      const out: Array<{ namespace: string; id: string }> = [];
      const entries = (d: string): string[] => {
        try {
          return fs.readdirSync(d);
        } catch {
          return [];
        }
      };
      for (const ns of entries(root)) for (const id of entries(path.join(root, ns))) out.push({ namespace: ns, id });
      return out;
    },
  };
}
