/* `tsrun spec`: write a default config.json into the bundle (refuses to overwrite, like runc). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultSpec } from '../../spec';
import { TsrunError, wrapSystemError } from '../../spec/errors';
import type { CommandContext } from './context';

/** Run `spec`. */
export function spec(_ctx: CommandContext, bundle: string, rootless: boolean): number {
  const file = path.join(path.resolve(bundle), 'config.json');
  if (fs.existsSync(file)) throw new TsrunError('AlreadyExists', `File ${file} exists. Remove it first`);
  const s = rootless ? defaultSpec({ rootless: true, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }) : defaultSpec({});
  try {
    // `tsrun spec` writes config.json into a bundle directory on the host (no rootfs involved), and
    // 'wx' refuses to follow or replace anything already there.
    // eslint-disable-next-line no-restricted-properties
    fs.writeFileSync(file, `${JSON.stringify(s, null, '\t')}\n`, { mode: 0o666, flag: 'wx' });
  } catch (err) {
    throw wrapSystemError(`write ${file}`, err);
  }
  return 0;
}
