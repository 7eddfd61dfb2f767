/** Network helpers for tests: traffic only to loopback and to containers the test made. */
import * as net from 'node:net';

/** Connect to host:port, read until the peer closes, resolve with what it sent (5 s at most). */
export function fetchTcp(host: string, port: number, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('data', (b) => (data += b.toString()));
    s.on('end', () => {
      clearTimeout(timer);
      resolve(data);
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
