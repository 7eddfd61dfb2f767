import { TsrunError } from '../../spec/errors';

/** Run fn and return the TsrunError it throws (anything else, or nothing, fails the test). */
export function thrown(fn: () => unknown): TsrunError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TsrunError) return err;
    throw err;
  }
  throw new Error('expected a TsrunError');
}
