/* What every command gets from the CLI: the root, a logger, and writers (so commands never print directly). */
import type { Logger } from '../cli/log';

/** Shared inputs of every verb. */
export interface CommandContext {
  readonly root: string;
  readonly log: Logger;
  readonly systemdCgroup: boolean;
  readonly out: (s: string) => void;
}
