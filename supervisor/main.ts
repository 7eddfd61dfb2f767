/*
 * tsrund's entry point: parse flags and config, start the daemon in the foreground, log to
 * stderr, stop on SIGINT/SIGTERM (containers keep running in their shims).
 */
import { connectShim, listShimDirs, reapDeadShim, startShim } from './shims/client';
import { nativeShimDriver, setNativeShimLogger } from './shims/c-shim';
import { TsrunError } from '../spec/errors';
import { HELP, parseArgs } from './config';
import { API_VERSION, startDaemon } from './daemon';
import { createLogger } from './log';

declare const TSRUN_COMMIT: string | undefined;

const revision = typeof TSRUN_COMMIT === 'string' ? TSRUN_COMMIT : 'dev';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`tsrund: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`tsrund ${API_VERSION} ${revision}\n`);
    return 0;
  }
  const cfg = parsed.config;
  const log = createLogger(cfg.logLevel);
  let daemon;
  try {
    if (cfg.shim === 'native') setNativeShimLogger(log);
    const driver = cfg.shim === 'native' ? nativeShimDriver : { startShim, connectShim, listShimDirs, reapDeadShim };
    daemon = await startDaemon(cfg, driver, log, revision);
  } catch (e) {
    log.error('tsrund failed to start', { error: e instanceof TsrunError ? e.fullMessage() : e instanceof Error ? e.message : String(e) });
    return 1;
  }
  log.info('tsrund serving', { socket: cfg.socket, root: cfg.root, shims: cfg.shimRoot, runtime: cfg.runtime, shim: cfg.shim, pid: process.pid });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info('tsrund stopping', { signal: sig });
      daemon.stop().then(
        () => resolve(0),
        (e: unknown) => {
          log.error('stop failed', { error: e instanceof Error ? e.message : String(e) });
          resolve(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`tsrund: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
