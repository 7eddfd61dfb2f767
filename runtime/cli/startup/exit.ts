/*
 * How the CLI ends. Letting node's event loop run dry tears the whole isolate down (cleanup hooks,
 * every heap page unmapped one by one), a noticeable share of a short command's time. Once a
 * command has finished there is nothing left worth that, so the CLI exits at once. Nothing written is lost: on Linux node writes stdout and stderr synchronously
 * whether they are files, pipes, sockets or terminals (a full pipe blocks the write), and our
 * log file is written with appendFileSync.
 */

/** End the process with `code` now; 'exit' listeners still run. */
export function exitNow(code: number): never {
  process.exit(code);
}
