import t from 'tap';
import * as os from 'node:os';
import { EXEC, INIT, childError } from '../../../../runtime/container/child-sync';
import { MSG, STAGE, stageName } from '../../../../runtime/plan/ops';

const msg = (errno: number, text: string, value = 0) => ({ type: MSG.ERROR, stage: STAGE.MOUNT, errno, value, payload: Buffer.from(`${text}\0`), fd: -1 });

t.test('create and exec read a child failure the same way', async (t) => {
  for (const kind of [INIT, EXEC]) {
    const e = childError(msg(os.constants.errno.EACCES, 'open /x'), kind);
    t.equal(e.code, 'PermissionDenied', `${kind.noun}: EACCES`);
    t.equal(e.errno, 'EACCES');
    t.equal(e.stage, stageName(STAGE.MOUNT));
    t.match(e.message, new RegExp(`^${kind.failure}: ${stageName(STAGE.MOUNT)}: open /x: `), 'the text, without its NUL, then the errno described');
    t.equal(childError(msg(os.constants.errno.ENOENT, 'exec sh'), kind).code, 'NotFound', `${kind.noun}: ENOENT`);
    t.equal(childError(msg(os.constants.errno.ENOENT, 'exec sh: complete', 1), kind).message, `${kind.failure}: ${stageName(STAGE.MOUNT)}: exec sh: complete`, 'value 1: the message is complete');
    t.equal(childError(msg(0, 'no errno'), kind).code, 'FailedPrecondition', `${kind.noun}: no errno`);
  }
});
