/* `tsrun features`: what this runtime supports on this host, as JSON (runtime-spec features.md). */
import { hostFeatures } from '../container/features';
import type { CommandContext } from './context';

/** Run `features`. */
export function features(ctx: CommandContext, version: string): number {
  ctx.out(`${JSON.stringify(hostFeatures(version), null, 4)}\n`);
  return 0;
}
