import t from 'tap';
import { PROC_SAFE_MOUNTS, procMountProblem } from '../../../spec/proc-mounts';

t.test('outside /proc anything goes', async (t) => {
  for (const d of ['/', '/data', '/procfoo', '/proc-x/sys', 'tmp', '/sys/kernel']) t.equal(procMountProblem(d, 'bind'), undefined, d);
});

t.test('/proc itself takes a procfs (or a bind the C helper checks is one)', async (t) => {
  t.equal(procMountProblem('/proc', 'proc'), undefined);
  t.equal(procMountProblem('/proc/', 'proc'), undefined);
  t.equal(procMountProblem('proc', 'bind'), undefined);
  t.equal(procMountProblem('/proc', 'tmpfs'), '"/proc" cannot be mounted because it is not of type proc');
});

t.test('inside /proc only the lxcfs files, after normalising the literal path', async (t) => {
  for (const d of PROC_SAFE_MOUNTS) t.equal(procMountProblem(d, 'bind'), undefined, d);
  t.equal(procMountProblem('/proc//meminfo', 'bind'), undefined, 'double slash');
  t.equal(procMountProblem('/proc/sys/kernel', 'bind'), '"/proc/sys/kernel" cannot be mounted because it is inside /proc');
  t.equal(procMountProblem('/proc/sys/kernel/', 'tmpfs'), '"/proc/sys/kernel" cannot be mounted because it is inside /proc');
  t.equal(procMountProblem('/proc/self/attr', 'bind'), '"/proc/self/attr" cannot be mounted because it is inside /proc');
  t.equal(procMountProblem('/tmp/../proc/sysrq-trigger', 'bind'), '"/proc/sysrq-trigger" cannot be mounted because it is inside /proc', '.. resolved');
  t.equal(procMountProblem('proc/sys', 'bind'), '"/proc/sys" cannot be mounted because it is inside /proc', 'relative to /');
  t.equal(procMountProblem('/proc/meminfo/x', 'bind'), '"/proc/meminfo/x" cannot be mounted because it is inside /proc', 'below a safe file');
});
