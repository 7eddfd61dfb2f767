import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { MAX_CONFIG_BYTES, readConfigFile } from '../../../../runtime/container/config-file';
import { TsrunError } from '../../../../spec/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-config-file-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('a regular file, or a symlink to one, is read whole', async (t) => {
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, '{"ociVersion":"1.2.0"}');
  t.equal(readConfigFile(file), '{"ociVersion":"1.2.0"}');
  fs.symlinkSync(file, path.join(dir, 'link.json'));
  t.equal(readConfigFile(path.join(dir, 'link.json')), '{"ociVersion":"1.2.0"}');
});

t.test('anything else is refused with the path and the kind', async (t) => {
  t.throws(() => readConfigFile('/dev/zero'), new TsrunError('InvalidArgument', 'read /dev/zero: is a character device, not a regular file'));
  t.throws(() => readConfigFile(dir), new TsrunError('InvalidArgument', `read ${dir}: is a directory, not a regular file`));
  const fifo = path.join(dir, 'fifo');
  if (spawnSync('mkfifo', [fifo]).status === 0) t.throws(() => readConfigFile(fifo), new TsrunError('InvalidArgument', `read ${fifo}: is a fifo, not a regular file`));
  t.throws(() => readConfigFile(path.join(dir, 'missing.json')), { code: 'NotFound', message: /missing\.json: no such file or directory/ });
});

t.test('a file over the cap is refused before it is read', async (t) => {
  const big = path.join(dir, 'big.json');
  fs.closeSync(fs.openSync(big, 'w'));
  fs.truncateSync(big, MAX_CONFIG_BYTES + 1); // sparse: nothing is written
  t.throws(() => readConfigFile(big), new TsrunError('InvalidArgument', `read ${big}: larger than the limit of 64 MiB`));
  fs.truncateSync(big, MAX_CONFIG_BYTES);
  t.equal(readConfigFile(big).length, MAX_CONFIG_BYTES, 'exactly the cap is fine');
});
