/*
 * The container labels tsctl and tsrund share (tsctl writes the settings, tsrund acts on them):
 *
 *   tsctl.name              the container's --name (unique per namespace, checked by tsctl)
 *   tsctl.image             what `run` was given as the image (rootfs or bundle directory)
 *   tsctl.command           the command line as ps shows it (JSON array)
 *   tsctl.log-driver        "json-file" (default for tsctl containers) or "none"
 *   tsctl.log-max-size      bytes before rotation (0: never)
 *   tsctl.log-max-file      files kept, live one included
 *   tsctl.log-path          set by tsrund: <logRoot>/<ns>/<id>/<id>-json.log
 *   tsctl.started-at        RFC 3339 time of the last start (tsctl start/run, restart policy)
 *   tsctl.exit-code         set by tsrund with restart-state: the exit that caused the pending restart
 *   tsctl.finished-at       set with it: RFC 3339 time of that exit (the exited task may be gone
 *                           when a stop ends the restart half-way: the container shows as exited)
 *   tsctl.auto-remove       "true" with `run --rm -d`: tsrund removes the container when it exits
 *   tsctl.release-network-on-exit
 *                           "true" with `run --rm` (attached): tsrund releases the container's
 *                           network as soon as its task exits, while tsctl removes the rest
 *   tsctl.oom-killed        set by tsrund to "true" when the shim reports an OOM kill in the
 *                           container's cgroup; removed when its next task is created (docker's
 *                           State.OOMKilled)
 *   tsctl.restart-policy, tsctl.restart-state, tsctl.restart-count, tsctl.manually-stopped:
 *                           see supervisor/restart/policy.ts
 */
import * as path from 'node:path';
import type { JsonLogSpec } from '../shim/api';

/** Label names (see the table above). */
export const LABELS = {
  name: 'tsctl.name',
  image: 'tsctl.image',
  command: 'tsctl.command',
  logDriver: 'tsctl.log-driver',
  logMaxSize: 'tsctl.log-max-size',
  logMaxFile: 'tsctl.log-max-file',
  logPath: 'tsctl.log-path',
  startedAt: 'tsctl.started-at',
  autoRemove: 'tsctl.auto-remove',
  releaseNetworkOnExit: 'tsctl.release-network-on-exit',
  exitCode: 'tsctl.exit-code',
  finishedAt: 'tsctl.finished-at',
  oomKilled: 'tsctl.oom-killed',
} as const;

/** Where tsrund writes the json-file log of container `id` in namespace `ns`. */
export function jsonLogPath(logRoot: string, ns: string, id: string): string {
  return path.join(logRoot, ns, id, `${id}-json.log`);
}

/** The json-file log settings a container's labels ask for, or undefined (no log-driver label, or "none"). */
export function jsonLogFromLabels(labels: Readonly<Record<string, string>>, logRoot: string, ns: string, id: string): JsonLogSpec | undefined {
  if (labels[LABELS.logDriver] !== 'json-file') return undefined;
  const num = (v: string | undefined, dflt: number): number => {
    const n = Number(v);
    return v === undefined || v === '' || !Number.isSafeInteger(n) || n < 0 ? dflt : n;
  };
  return {
    path: jsonLogPath(logRoot, ns, id),
    maxSize: num(labels[LABELS.logMaxSize], 0),
    maxFiles: Math.max(1, num(labels[LABELS.logMaxFile], 1)),
  };
}
