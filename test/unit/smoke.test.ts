import t from 'tap';
import { encodePlan } from '../../runtime/plan/encode';
t.test('encode', async (t) => { t.equal(encodePlan({ version: 1, ops: [{ op: 'UMASK', mask: 18 }] }).length, 16 + 8 + 4); });
