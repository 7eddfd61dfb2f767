/*
 * Range checks for user and group ids, wherever one enters: config.json, process.json, exec and
 * tsctl flags. An id is 0 to 2147483647. The kernel's uid_t is 32 bits, but 4294967295
 * ((uid_t)-1) means "leave unchanged" to setresuid(2)/setresgid(2), so a process asked to run as
 * 4294967295 would keep the runtime's own ids: root. runc holds ids in Go ints and refuses
 * what does not fit an int32; so do we, everywhere, with the field named.
 */
import { TsrunError } from './errors';
import type { IDMapping } from './schema-linux';

/** The largest uid or gid a container process may be given. */
export const MAX_ID = 2147483647;

/** The largest id a mapping may cover: (u32)-1 cannot be mapped (user_namespaces(7)). */
const MAX_MAPPED_ID = 2 ** 32 - 2;

/** Why `id` is not a usable uid or gid ("uid" or "gid" in `what`), or undefined when it is. */
export function idProblem(id: number, what: 'uid' | 'gid'): string | undefined {
  if (Number.isInteger(id) && id >= 0 && id <= MAX_ID) return undefined;
  return `invalid ${what} ${String(id)}: uids and gids must be in range 0-${MAX_ID}`;
}

/**
 * The first problem in a list of id mappings, as "<at>[i].<field>: <why>", or undefined.
 * Starts are ids (0 to MAX_ID); a range must be non-empty and must not run past the last
 * mappable id, so containerID + size and hostID + size never wrap around 32 bits.
 */
export function mappingsProblem(mappings: readonly IDMapping[] | undefined, at: string, what: 'uid' | 'gid'): string | undefined {
  for (const [i, m] of (mappings ?? []).entries()) {
    const container = idProblem(m.containerID, what);
    if (container !== undefined) return `${at}[${i}].containerID: ${container}`;
    const host = idProblem(m.hostID, what);
    if (host !== undefined) return `${at}[${i}].hostID: ${host}`;
    if (m.size < 1) return `${at}[${i}].size: must be at least 1`;
    if (m.containerID + m.size - 1 > MAX_MAPPED_ID) return `${at}[${i}]: containerID ${m.containerID} + size ${m.size} runs past the last ${what}`;
    if (m.hostID + m.size - 1 > MAX_MAPPED_ID) return `${at}[${i}]: hostID ${m.hostID} + size ${m.size} runs past the last ${what}`;
  }
  return undefined;
}

/**
 * Parse a decimal id given on a command line; `flag` names where it came from in the message
 * (e.g. "--user"). Only digits are accepted, then the range is checked; InvalidArgument otherwise.
 */
export function parseIdFlag(text: string, flag: string, what: 'uid' | 'gid'): number {
  if (!/^\d+$/.test(text)) throw new TsrunError('InvalidArgument', `${flag}: invalid ${what} ${JSON.stringify(text)}: want a number`);
  const n = Number(text);
  const problem = idProblem(n, what);
  if (problem !== undefined) throw new TsrunError('InvalidArgument', `${flag}: ${problem}`);
  return n;
}
