import t from 'tap';
import { codeForErrno, describeErrno, TsrunError, wrapSystemError } from '../../../spec/errors';

t.test('TsrunError carries its details', async (t) => {
  const plain = new TsrunError('NotFound', 'container does not exist');
  t.equal(plain.name, 'TsrunError');
  t.equal(plain.code, 'NotFound');
  t.equal(plain.errno, undefined);
  t.equal(plain.stage, undefined);
  t.same(plain.cleanup, []);
  t.equal(plain.cause, undefined);
  t.equal(plain.fullMessage(), 'container does not exist');
  const cause = new Error('inner');
  const full = new TsrunError('Internal', 'mount /proc: operation not permitted', { cause, errno: 'EPERM', stage: 'mounts', cleanup: [new Error('rmdir x: busy'), new Error('kill: gone')] });
  t.equal(full.cause, cause);
  t.equal(full.errno, 'EPERM');
  t.equal(full.stage, 'mounts');
  t.equal(full.fullMessage(), 'mount /proc: operation not permitted (cleanup also failed: rmdir x: busy; kill: gone)');
});

t.test('errno names map to codes and words', async (t) => {
  const table: readonly [string | undefined, string][] = [
    ['ENOENT', 'NotFound'],
    ['ESRCH', 'NotFound'],
    ['EEXIST', 'AlreadyExists'],
    ['EACCES', 'PermissionDenied'],
    ['EPERM', 'PermissionDenied'],
    ['EINVAL', 'InvalidArgument'],
    ['ENOTDIR', 'InvalidArgument'],
    ['EISDIR', 'InvalidArgument'],
    ['ELOOP', 'InvalidArgument'],
    ['ENAMETOOLONG', 'InvalidArgument'],
    ['EBUSY', 'Unavailable'],
    ['EAGAIN', 'Unavailable'],
    ['EWOULDBLOCK', 'Unavailable'],
    ['EIO', 'Internal'],
    [undefined, 'Internal'],
  ];
  for (const [errno, code] of table) t.equal(codeForErrno(errno), code, String(errno));
  t.equal(describeErrno('ENOENT'), 'no such file or directory');
  t.equal(describeErrno('EFOOBAR'), 'efoobar');
});

t.test('wrapSystemError keeps the cause and names the errno', async (t) => {
  const enoent = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  const wrapped = wrapSystemError('open /b/config.json', enoent);
  t.equal(wrapped.message, 'open /b/config.json: no such file or directory');
  t.equal(wrapped.code, 'NotFound');
  t.equal(wrapped.errno, 'ENOENT');
  t.equal(wrapped.cause, enoent);
  const ours = new TsrunError('Internal', 'x');
  t.equal(wrapSystemError('y', ours), ours, 'a TsrunError passes through');
  t.equal(wrapSystemError('read', new Error('boom')).message, 'read: boom');
  t.equal(wrapSystemError('read', new Error('boom')).errno, undefined);
  t.equal(wrapSystemError('read', 'plain string').message, 'read: plain string');
  t.equal(wrapSystemError('read', null).message, 'read: null');
});
