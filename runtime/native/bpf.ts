/*
 * The cgroup v2 device controller's FFI half: tsrun_bpf_prog_load_attach (native-helpers/bpf.c).
 * It is handed the program bytes (runtime/cgroups/devices-bpf.ts makes them), so this module
 * stays a leaf.
 */
import * as fs from 'node:fs';
import { TsrunError, codeForErrno, describeErrno, wrapSystemError } from '../../spec/errors';
import { errnoName, load } from './index';

/**
 * Attach an encoded BPF_PROG_TYPE_CGROUP_DEVICE program to the cgroup v2 directory `cgroupDir`,
 * replacing the device program attached there before. A verifier rejection carries its log.
 */
export function attachDeviceProgram(cgroupDir: string, program: Buffer): void {
  const l = load();
  let fd: number;
  try {
    fd = fs.openSync(cgroupDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (err) {
    throw wrapSystemError(`open cgroup ${cgroupDir}`, err);
  }
  const log = Buffer.alloc(64 * 1024);
  let rc: number;
  try {
    rc = l.bpfProgLoadAttach(fd, program, program.length, log, log.length);
  } finally {
    fs.closeSync(fd);
  }
  if (rc >= 0) return;
  const name = errnoName(-rc);
  const verifier = log.subarray(0, Math.max(0, log.indexOf(0))).toString('utf8').trim();
  const detail = verifier === '' ? '' : ` (verifier: ${verifier.split('\n').slice(-3).join(' | ')})`;
  throw new TsrunError(codeForErrno(name), `attach device program to ${cgroupDir}: ${describeErrno(name)}${detail}`, { errno: name });
}

/** Why device programs cannot be attached here (the helper does not load), or undefined. */
export function deviceProgramUnsupported(): string | undefined {
  try {
    load();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
