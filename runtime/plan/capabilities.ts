/* Capability names → the bitmasks the plan carries. */
import { CAPABILITY_NUMBERS } from '../../spec';

/** Turn a list of capability names into a bitmask; unknown names are the validator's job. */
export function capMask(names: readonly string[] | undefined, capLastCap: number): bigint {
  let mask = 0n;
  for (const n of names ?? []) {
    const bit = CAPABILITY_NUMBERS[n];
    // A capability the running kernel does not know cannot be granted; runc skips it too.
    if (bit !== undefined && bit <= capLastCap) mask |= 1n << BigInt(bit);
  }
  return mask;
}
