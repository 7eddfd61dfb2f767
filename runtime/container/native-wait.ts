/* Waiting for a container init that is our own child (tsrun run), without blocking the event loop. */
import * as native from '../native';

/** Reap our child init and return its exit code as a shell would report it. */
export async function waitForChild(pid: number): Promise<number> {
  const { status } = await native.waitpidAsync(pid);
  return native.exitCodeOf(status);
}
