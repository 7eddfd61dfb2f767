/*
 * How the CLI ends. Letting node's event loop run dry tears the whole isolate down (cleanup hooks,
 * every heap page unmapped one by one): about 2.5 ms of each `node -e 0` on the bench host, a tenth
 * of node's start-up. Once a command has finished there is nothing left worth that, so the CLI
 * waits for stdout and stderr to take what was written to them, then exits at once.
 */

/** Resolves once everything written so far to `stream` has been handed to the kernel. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) {
      resolve();
      return;
    }
    stream.write('', () => resolve());
  });
}

/** Exit with `code` once stdout and stderr are flushed; 'exit' listeners still run. */
export function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  void Promise.all([flushed(process.stdout), flushed(process.stderr)]).then(() => process.exit(code));
}
