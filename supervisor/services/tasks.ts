/*
 * gRPC adapter for containerd.services.tasks.v1.Tasks over tasks/local.ts.
 * Checkpoint answers UNIMPLEMENTED (not in the proto handlers).
 */
import type { StdioSpec } from '../../shim/api';
import { packAny, now, ZERO_TIME } from '../proto/index';
import type {
  CloseIORequest,
  CreateTaskRequest,
  ExecProcessRequest,
  FiltersRequest,
  KillRequest,
  ProcessRequest,
  ResizePtyRequest,
  UpdateTaskRequest,
} from '../proto/messages';
import { TaskStatus } from '../proto/messages';
import type { ServiceImpl } from '../grpc/server';
import { metricsAny } from '../tasks/metrics';
import type { ExitView, ProcessView, Tasks } from '../tasks/local';

const STATUS: Record<ProcessView['status'], number> = {
  unknown: TaskStatus.UNKNOWN,
  created: TaskStatus.CREATED,
  running: TaskStatus.RUNNING,
  stopped: TaskStatus.STOPPED,
  paused: TaskStatus.PAUSED,
};

/** A process view as containerd.v1.types.Process (container_id left empty, as containerd does). */
export function processToWire(p: ProcessView): Record<string, unknown> {
  return {
    id: p.id,
    pid: p.pid,
    status: STATUS[p.status],
    stdin: p.stdio.stdin,
    stdout: p.stdio.stdout,
    stderr: p.stdio.stderr,
    terminal: p.stdio.terminal,
    exitStatus: p.exitStatus,
    exitedAt: p.exitedAt ?? ZERO_TIME,
  };
}

function exitToWire(e: ExitView): Record<string, unknown> {
  return { id: e.id, pid: e.pid, exitStatus: e.exitStatus, exitedAt: e.exitedAt };
}

const opt = (s: string): string | undefined => (s === '' ? undefined : s);

/** containerd.services.tasks.v1.Tasks */
export function tasksService(tasks: Tasks): ServiceImpl {
  return {
    service: 'containerd.services.tasks.v1.Tasks',
    unary: {
      Create: async (req: CreateTaskRequest, ctx) => {
        const stdio: StdioSpec = { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal };
        const { pid } = await tasks.create(ctx.namespace(), req.containerId, {
          stdio,
          options: req.options,
          rootfsMounts: req.rootfs.length,
          rootfs: req.rootfs,
          checkpoint: req.checkpoint !== null && req.checkpoint.digest !== '',
        });
        return { containerId: req.containerId, pid };
      },
      Start: async (req: ProcessRequest, ctx) => ({ pid: (await tasks.start(ctx.namespace(), req.containerId, opt(req.execId))).pid }),
      Wait: async (req: ProcessRequest, ctx) => {
        const e = await tasks.wait(ctx.namespace(), req.containerId, opt(req.execId));
        return { exitStatus: e.exitStatus, exitedAt: e.exitedAt };
      },
      Get: (req: ProcessRequest, ctx) => ({ process: processToWire(tasks.get(ctx.namespace(), req.containerId, opt(req.execId))) }),
      List: (_req: unknown, ctx) => ({ tasks: tasks.list(ctx.namespace()).map(processToWire) }),
      Delete: async (req: ProcessRequest, ctx) => exitToWire(await tasks.delete(ctx.namespace(), req.containerId)),
      DeleteProcess: async (req: ProcessRequest, ctx) =>
        exitToWire(await tasks.deleteProcess(ctx.namespace(), req.containerId, req.execId)),
      Kill: async (req: KillRequest, ctx) => {
        await tasks.kill(ctx.namespace(), req.containerId, opt(req.execId), req.signal, req.all);
        return {};
      },
      Exec: async (req: ExecProcessRequest, ctx) => {
        const stdio: StdioSpec = { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal };
        await tasks.exec(ctx.namespace(), req.containerId, req.execId, req.spec, stdio);
        return {};
      },
      ResizePty: async (req: ResizePtyRequest, ctx) => {
        await tasks.resizePty(ctx.namespace(), req.containerId, opt(req.execId), req.width, req.height);
        return {};
      },
      CloseIO: async (req: CloseIORequest, ctx) => {
        if (req.stdin) await tasks.closeIO(ctx.namespace(), req.containerId, opt(req.execId));
        return {};
      },
      Pause: async (req: ProcessRequest, ctx) => {
        await tasks.pause(ctx.namespace(), req.containerId);
        return {};
      },
      Resume: async (req: ProcessRequest, ctx) => {
        await tasks.resume(ctx.namespace(), req.containerId);
        return {};
      },
      ListPids: async (req: ProcessRequest, ctx) => ({
        processes: (await tasks.listPids(ctx.namespace(), req.containerId)).map((p) =>
          p.execId === undefined ? { pid: p.pid } : { pid: p.pid, info: packAny('containerd.runc.v1.ProcessDetails', { execId: p.execId }) },
        ),
      }),
      Metrics: async (req: FiltersRequest, ctx) => {
        const t = now();
        const all = await tasks.stats(ctx.namespace(), req.filters);
        return { metrics: all.map((m) => ({ timestamp: t, id: m.id, data: metricsAny(m.stats) })) };
      },
      Update: async (req: UpdateTaskRequest, ctx) => {
        await tasks.update(ctx.namespace(), req.containerId, req.resources);
        return {};
      },
    },
  };
}
