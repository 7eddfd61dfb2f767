/*
 * Device rules → a BPF_PROG_TYPE_CGROUP_DEVICE program, the cgroup v2 replacement for
 * devices.allow/deny. Pure: it returns the instruction bytes; runtime/native/bpf.ts loads them.
 *
 * The kernel runs the program on every open/mknod of a device node with
 *   struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }   (linux/bpf.h)
 *   access_type = access << 16 | type,  access: mknod 1, read 2, write 4;  type: block 1, char 2
 * and allows the access when it returns 1.
 *
 * Layout (each rule a block that jumps over itself when it does not match):
 *
 *   r2 = ctx->access_type & 0xffff     type
 *   r3 = ctx->access_type >> 16        requested access
 *   r4 = ctx->major;  r5 = ctx->minor
 *   block for the LAST rule:  if r2 != type goto next; if r4 != major goto next; …
 *                             access test; r0 = allow ? 1 : 0; exit
 *   …blocks for the earlier rules…
 *   r0 = 1; exit                       nothing matched
 *
 * A rule matching every device and access ends the list there (the usual leading deny-all):
 * the kernel's verifier rejects a program with unreachable instructions.
 *
 * Later rules override earlier ones (the spec's order), so blocks run last rule first and the
 * first match decides. A rule matches an allow when it grants every requested access bit
 * (req & ~granted == 0, as v1 matches one exception) and a deny when it forbids any of them
 * (req & denied != 0). Nothing matching means allowed: a v1 cgroup starts as "a *:* rwm"
 * allowed too, and engines begin their lists with a deny-all, which then matches everything.
 *
 * Instructions are struct bpf_insn: u8 code, u8 dst:4 src:4 (dst in the low nibble), s16 off,
 * s32 imm, little-endian, 8 bytes each.
 */
import { TsrunError } from '../../spec/errors';
import { isAllDevices, type DeviceRule } from './devices';

/** One eBPF instruction. */
export interface BpfInsn {
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
}

/** The opcodes the generator uses (linux/bpf_common.h, linux/bpf.h). */
export const OP = {
  /** BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off) */
  LDX_W: 0x61,
  /** BPF_ALU64 | BPF_AND | BPF_K */
  AND_K: 0x57,
  /** BPF_ALU64 | BPF_RSH | BPF_K */
  RSH_K: 0x77,
  /** BPF_ALU64 | BPF_MOV | BPF_K */
  MOV_K: 0xb7,
  /** BPF_ALU64 | BPF_MOV | BPF_X */
  MOV_X: 0xbf,
  /** BPF_JMP | BPF_JEQ | BPF_K */
  JEQ_K: 0x15,
  /** BPF_JMP | BPF_JNE | BPF_K */
  JNE_K: 0x55,
  /** BPF_JMP | BPF_EXIT */
  EXIT: 0x95,
} as const;

/** Access bits and device types of struct bpf_cgroup_dev_ctx. */
export const DEVCG = { MKNOD: 1, READ: 2, WRITE: 4, BLOCK: 1, CHAR: 2 } as const;

const insn = (code: number, dst: number, src: number, off: number, imm: number): BpfInsn => ({ code, dst, src, off, imm });

function accessBits(access: string): number {
  return (access.includes('m') ? DEVCG.MKNOD : 0) | (access.includes('r') ? DEVCG.READ : 0) | (access.includes('w') ? DEVCG.WRITE : 0);
}

function checkNumber(n: number | null, what: string): void {
  // JNE compares with a sign-extended 32-bit immediate: device numbers are 12 and 20 bits.
  if (n !== null && (!Number.isInteger(n) || n < 0 || n > 0x7fffffff)) {
    throw new TsrunError('InvalidArgument', `device rule ${what} ${n}: out of range for a device number`);
  }
}

/** One rule's block: the tests jump to the block's end when they fail. */
function ruleBlock(r: DeviceRule): BpfInsn[] {
  checkNumber(r.major, 'major');
  checkNumber(r.minor, 'minor');
  const tests: { code: number; dst: number; imm: number }[] = [];
  if (r.type !== 'a') tests.push({ code: OP.JNE_K, dst: 2, imm: r.type === 'b' ? DEVCG.BLOCK : DEVCG.CHAR });
  if (r.major !== null) tests.push({ code: OP.JNE_K, dst: 4, imm: r.major });
  if (r.minor !== null) tests.push({ code: OP.JNE_K, dst: 5, imm: r.minor });
  const bits = accessBits(r.access);
  const out: BpfInsn[] = [];
  const jumps: number[] = [];
  for (const test of tests) {
    jumps.push(out.length);
    out.push(insn(test.code, test.dst, 0, 0, test.imm));
  }
  if (bits !== 7) {
    // r1 (the context pointer, no longer needed) holds the access test.
    out.push(insn(OP.MOV_X, 1, 3, 0, 0));
    if (r.allow) {
      out.push(insn(OP.AND_K, 1, 0, 0, ~bits & 7));
      jumps.push(out.length);
      out.push(insn(OP.JNE_K, 1, 0, 0, 0));
    } else {
      out.push(insn(OP.AND_K, 1, 0, 0, bits));
      jumps.push(out.length);
      out.push(insn(OP.JEQ_K, 1, 0, 0, 0));
    }
  }
  out.push(insn(OP.MOV_K, 0, 0, 0, r.allow ? 1 : 0));
  out.push(insn(OP.EXIT, 0, 0, 0, 0));
  // A jump's offset counts the instructions after it: land just past this block.
  return out.map((x, i) => (jumps.includes(i) ? { ...x, off: out.length - i - 1 } : x));
}

/** The program's instructions for `rules` (from `deviceRules`, defaults included). */
export function deviceProgramInsns(rules: readonly DeviceRule[]): BpfInsn[] {
  const out: BpfInsn[] = [
    insn(OP.LDX_W, 2, 1, 0, 0),
    insn(OP.AND_K, 2, 0, 0, 0xffff),
    insn(OP.LDX_W, 3, 1, 0, 0),
    insn(OP.RSH_K, 3, 0, 0, 16),
    insn(OP.LDX_W, 4, 1, 4, 0),
    insn(OP.LDX_W, 5, 1, 8, 0),
  ];
  for (const r of [...rules].reverse()) {
    out.push(...ruleBlock(r));
    // A rule that matches everything ends the program: the verifier refuses unreachable code.
    if (isAllDevices(r)) return out;
  }
  out.push(insn(OP.MOV_K, 0, 0, 0, 1), insn(OP.EXIT, 0, 0, 0, 0));
  return out;
}

/** The instructions as the bytes BPF_PROG_LOAD takes. */
export function encodeInsns(insns: readonly BpfInsn[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((x, i) => {
    buf.writeUInt8(x.code, i * 8);
    buf.writeUInt8(((x.src & 0xf) << 4) | (x.dst & 0xf), i * 8 + 1);
    buf.writeInt16LE(x.off, i * 8 + 2);
    buf.writeInt32LE(x.imm, i * 8 + 4);
  });
  return buf;
}

/** Bytes back to instructions (tests and debugging). */
export function decodeInsns(buf: Buffer): BpfInsn[] {
  if (buf.length % 8 !== 0) throw new TsrunError('InvalidArgument', `decode eBPF program: ${buf.length} bytes is not a whole number of instructions`);
  const out: BpfInsn[] = [];
  for (let i = 0; i < buf.length; i += 8) {
    const regs = buf.readUInt8(i + 1);
    out.push({ code: buf.readUInt8(i), dst: regs & 0xf, src: regs >> 4, off: buf.readInt16LE(i + 2), imm: buf.readInt32LE(i + 4) });
  }
  return out;
}

/** The encoded BPF_PROG_TYPE_CGROUP_DEVICE program for `rules`. */
export function deviceProgram(rules: readonly DeviceRule[]): Buffer {
  return encodeInsns(deviceProgramInsns(rules));
}
