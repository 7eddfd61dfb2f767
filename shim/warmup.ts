/*
 * What a warm shim (tsrun-shim --pool) does while it waits: load and run, once, the pure code a
 * container's create goes through — spec parse and validation, host probe, plan build and
 * encoding, the cgroup driver (over an in-memory fs), the wire codec, a unix socket server — so
 * that its first real create finds the functions compiled (and node's lazily loaded internals
 * loaded) instead of doing that on tsrund's clock. Nothing here touches the host's files; any
 * failure is ignored.
 */
import * as net from 'node:net';
import { parseSpec, validateSpec } from '../spec';
import { defaultSpec } from '../spec/default';
import { probeHost } from '../runtime/host/probe';
import { warmCreateCode } from '../runtime/cli/startup/warm';
import { decodeFrame, encodeFrame } from './protocol/messages';

/** Exercise the create path's pure functions once. */
export function warmUp(): void {
  try {
    const host = probeHost();
    const base = defaultSpec();
    const text = JSON.stringify({ ...base, root: { path: '/nonexistent' }, linux: { ...base.linux, cgroupsPath: '/warm-up/warm-up' } });
    const spec = parseSpec(text, 'warm-up');
    validateSpec(spec, { bundle: '/nonexistent', hasSystemd: host.hasSystemd, systemdCgroup: false });
    warmCreateCode(spec, host);
  } catch {
    // only a warm-up
  }
  try {
    const stdio = { stdin: '', stdout: '/nonexistent', stderr: '', terminal: false };
    decodeFrame(encodeFrame({ id: 1, request: { method: 'create', execId: '', stdio } }));
    decodeFrame(encodeFrame({ id: 1, response: { pid: 1, processes: [{ execId: '', pid: 1, status: 'running', stdio, hasExit: false, exitStatus: 0, exitedAt: '' }] } }));
    decodeFrame(encodeFrame({ id: 0, event: { type: 'exit', exit: { execId: '', pid: 1, exitStatus: 0, exitedAt: '' } } }));
  } catch {
    // only a warm-up
  }
}

/** Listen on an abstract unix socket, connect to it once, close: loads node's net internals. */
export async function warmUpServer(): Promise<void> {
  const name = `\0tsrun-shim-warm-up-${process.pid}`;
  try {
    await new Promise<void>((resolve, reject) => {
      const server = net.createServer((c) => c.end());
      server.once('error', reject);
      server.listen(name, () => {
        const c = net.createConnection(name);
        c.on('error', () => undefined);
        c.resume();
        c.once('close', () => server.close(() => resolve()));
      });
    });
  } catch {
    // only a warm-up
  }
}
