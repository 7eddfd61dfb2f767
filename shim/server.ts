/*
 * The shim's end of the wire: a unix socket server that turns request frames into Service calls
 * and writes one response frame per request (same id), concurrently (a long `wait` does not hold
 * up other calls), and pushes events to the connections that subscribed.
 */
import * as net from 'node:net';
import { TsrunError } from '../spec/errors';
import type { ProcessExit, ProcessState, ShimEvent, StdioSpec } from './api';
import { decodeFrame, encodeFrame, type WireExit, type WireProcState, type WireRequest, type WireResponse } from './protocol/messages';
import { frameBytes, frameReader } from './protocol/framing';
import type { Service, Subscriber } from './service';
import { withSocketPath } from './sockpath';

/** Exit → wire. */
export function wireExit(e: ProcessExit): WireExit {
  return { execId: e.execId ?? '', pid: e.pid, exitStatus: e.exitStatus, exitedAt: e.exitedAt };
}

function wireState(s: ProcessState): WireProcState {
  return {
    execId: s.execId ?? '',
    pid: s.pid,
    status: s.status,
    stdio: { ...s.stdio },
    hasExit: s.exitStatus !== undefined,
    exitStatus: s.exitStatus ?? 0,
    exitedAt: s.exitedAt ?? '',
  };
}

function stdioOf(r: WireRequest): StdioSpec {
  const s = r.stdio;
  return { stdin: s?.stdin ?? '', stdout: s?.stdout ?? '', stderr: s?.stderr ?? '', terminal: s?.terminal === true };
}

/** What the server reports besides the service's answers. */
export interface ServerInfo {
  readonly namespace: string;
  readonly id: string;
  /** called after `delete` has been answered and written */
  readonly onDeleted: () => void;
}

/** A listening shim socket. */
export interface ShimServer {
  /** stop listening (connections stay until their peers or `delete` end them) */
  close(): void;
}

/** Serve a Service on a listening socket path. */
export function serve(sockPath: string, svc: Service, info: ServerInfo): Promise<ShimServer> {
  const handle = async (r: WireRequest, sub: Subscriber): Promise<WireResponse> => {
    const execId = r.execId === '' || r.execId === undefined ? undefined : r.execId;
    switch (r.method) {
      case 'hello':
        return { namespace: info.namespace, id: info.id, shimPid: process.pid };
      case 'subscribe':
        svc.subscribe(sub);
        return {};
      case 'create':
        return { pid: (await svc.create()).pid };
      case 'start':
        return { pid: (await svc.start(execId)).pid };
      case 'wait':
        return { exit: wireExit(await svc.wait(execId)) };
      case 'state':
        return { processes: [wireState(svc.state(execId))] };
      case 'list':
        return { processes: svc.list().map(wireState) };
      case 'kill':
        await svc.kill(r.signal ?? 0, execId, r.all === true);
        return {};
      case 'exec':
        if (!execId) throw new TsrunError('InvalidArgument', 'exec: an exec id is required');
        svc.exec(execId, Buffer.from(r.processJson ?? []).toString('utf8'), stdioOf(r));
        return {};
      case 'resizePty':
        await svc.resizePty(r.width ?? 0, r.height ?? 0, execId);
        return {};
      case 'closeStdin':
        svc.closeStdin(execId);
        return {};
      case 'pause':
        await svc.pause();
        return {};
      case 'resume':
        await svc.resume();
        return {};
      case 'pids':
        return { pids: (await svc.pids()).map((p) => ({ pid: p.pid, execId: p.execId ?? '' })) };
      case 'stats':
        return { json: Buffer.from(JSON.stringify(await svc.stats())) };
      case 'update':
        await svc.update(Buffer.from(r.resourcesJson ?? []).toString('utf8'));
        return {};
      case 'deleteProcess':
        if (!execId) throw new TsrunError('InvalidArgument', 'delete process: an exec id is required');
        return { exit: wireExit(svc.deleteProcess(execId)) };
      case 'delete':
        return { exit: wireExit(await svc.delete()) };
      default:
        throw new TsrunError('InvalidArgument', `shim: unknown method ${JSON.stringify(r.method)}`);
    }
  };

  const conns = new Set<net.Socket>();
  const connection = (conn: net.Socket): void => {
    conns.add(conn);
    const reader = frameReader();
    const send = (id: number, body: Parameters<typeof encodeFrame>[0]): boolean => {
      if (conn.destroyed || !conn.writable) return false;
      conn.write(frameBytes(encodeFrame({ ...body, id })));
      return true;
    };
    const sub: Subscriber = {
      send: (e: ShimEvent) => {
        const ev =
          e.type === 'exit' ? { type: 'exit', exit: wireExit(e.exit) } : e.type === 'exec-started' ? { type: e.type, execId: e.execId, pid: e.pid } : { type: e.type };
        return send(0, { id: 0, event: ev });
      },
    };
    const onData = (chunk: Buffer): void => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch {
        conn.destroy();
        return;
      }
      for (const f of frames) {
        const frame = decodeFrame(f);
        const req = frame.request;
        if (!req) continue;
        handle(req, sub).then(
          (resp) => {
            send(frame.id, { id: frame.id, response: resp });
            if (req.method === 'delete') {
              setImmediate(() => {
                info.onDeleted();
                // The shim exits soon after: its clients see EOF at once.
                for (const c of conns) c.end();
              });
            }
          },
          (err: unknown) => {
            const e = err instanceof TsrunError ? err : new TsrunError('Internal', `shim ${req.method}: ${(err as Error)?.message ?? String(err)}`);
            send(frame.id, { id: frame.id, response: { errorCode: e.code, errorMessage: e.message } });
          },
        );
      }
    };
    conn.on('data', onData);
    conn.on('error', () => undefined);
    conn.on('close', () => {
      conns.delete(conn);
      svc.unsubscribe(sub);
    });
  };
  const server = net.createServer((conn) => connection(conn));
  return withSocketPath(
    sockPath,
    (usable) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(usable, () => {
          server.off('error', reject);
          resolve({ close: () => void server.close() });
        });
      }),
  );
}
