import t from 'tap';
import { DEVCG, OP, decodeInsns, deviceProgram, deviceProgramInsns, encodeInsns, type BpfInsn } from '../../../../runtime/cgroups/devices-bpf';
import { DEFAULT_DEVICE_RULES, deviceRules } from '../../../../runtime/cgroups/devices';

/**
 * Run the decoded program the way the kernel would for one access, for the opcodes the
 * generator emits; anything else fails the test. Registers are 64-bit (bigint).
 */
function run(insns: readonly BpfInsn[], type: 'b' | 'c', major: number, minor: number, access: string): number {
  const bits = (access.includes('m') ? DEVCG.MKNOD : 0) | (access.includes('r') ? DEVCG.READ : 0) | (access.includes('w') ? DEVCG.WRITE : 0);
  const ctx = [BigInt((bits << 16) | (type === 'b' ? DEVCG.BLOCK : DEVCG.CHAR)), BigInt(major), BigInt(minor)];
  const r: bigint[] = Array(11).fill(0n);
  const CTX = 0xc7n;
  r[1] = CTX;
  const M = (1n << 64n) - 1n;
  const imm = (x: BpfInsn): bigint => BigInt.asUintN(64, BigInt(x.imm));
  for (let pc = 0, steps = 0; pc < insns.length && steps < 10000; pc++, steps++) {
    const x = insns[pc]!;
    switch (x.code) {
      case OP.LDX_W:
        if (r[x.src] !== CTX || x.off % 4 !== 0 || x.off > 8) throw new Error(`bad load at ${pc}`);
        r[x.dst] = ctx[x.off / 4]!;
        break;
      case OP.AND_K:
        r[x.dst] = r[x.dst]! & imm(x);
        break;
      case OP.RSH_K:
        r[x.dst] = r[x.dst]! >> BigInt(x.imm);
        break;
      case OP.MOV_K:
        r[x.dst] = imm(x) & M;
        break;
      case OP.MOV_X:
        r[x.dst] = r[x.src]!;
        break;
      case OP.JEQ_K:
        if (r[x.dst] === imm(x)) pc += x.off;
        break;
      case OP.JNE_K:
        if (r[x.dst] !== imm(x)) pc += x.off;
        break;
      case OP.EXIT:
        return Number(r[0]);
      default:
        throw new Error(`unexpected opcode 0x${x.code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('fell off the end');
}

t.test('encoding round-trips; the prologue reads the context', async (t) => {
  const insns = deviceProgramInsns(deviceRules([{ allow: false, access: 'rwm' }]));
  const bytes = deviceProgram(deviceRules([{ allow: false, access: 'rwm' }]));
  t.equal(bytes.length, insns.length * 8);
  t.same(decodeInsns(bytes), insns);
  t.same(insns.slice(0, 6), [
    { code: OP.LDX_W, dst: 2, src: 1, off: 0, imm: 0 },
    { code: OP.AND_K, dst: 2, src: 0, off: 0, imm: 0xffff },
    { code: OP.LDX_W, dst: 3, src: 1, off: 0, imm: 0 },
    { code: OP.RSH_K, dst: 3, src: 0, off: 0, imm: 16 },
    { code: OP.LDX_W, dst: 4, src: 1, off: 4, imm: 0 },
    { code: OP.LDX_W, dst: 5, src: 1, off: 8, imm: 0 },
  ]);
  t.same(bytes.subarray(0, 8), Buffer.from([0x61, 0x12, 0, 0, 0, 0, 0, 0]), 'dst in the low nibble, src in the high one');
  t.same(insns.slice(-2), [
    { code: OP.MOV_K, dst: 0, src: 0, off: 0, imm: 0 },
    { code: OP.EXIT, dst: 0, src: 0, off: 0, imm: 0 },
  ], 'the leading deny-all ends the program: nothing after it');
  const open = deviceProgramInsns(deviceRules([]));
  t.same(open.slice(-2), [
    { code: OP.MOV_K, dst: 0, src: 0, off: 0, imm: 1 },
    { code: OP.EXIT, dst: 0, src: 0, off: 0, imm: 0 },
  ], 'no deny-all: nothing matched is allowed');
  t.throws(() => decodeInsns(Buffer.alloc(7)), { message: 'decode eBPF program: 7 bytes is not a whole number of instructions' });
  t.same(encodeInsns([{ code: OP.JNE_K, dst: 4, src: 0, off: -2, imm: -1 }]), Buffer.from([0x55, 0x04, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]));
});

t.test('one rule block, decoded', async (t) => {
  // The last rule (c 136:* rwm, a default) comes first: type test, major test, allow.
  const insns = deviceProgramInsns([DEFAULT_DEVICE_RULES.at(-1)!]);
  t.same(insns.slice(6, 10), [
    { code: OP.JNE_K, dst: 2, src: 0, off: 3, imm: DEVCG.CHAR },
    { code: OP.JNE_K, dst: 4, src: 0, off: 2, imm: 136 },
    { code: OP.MOV_K, dst: 0, src: 0, off: 0, imm: 1 },
    { code: OP.EXIT, dst: 0, src: 0, off: 0, imm: 0 },
  ]);
  // A partial-access allow tests that no other bit was asked for.
  const m = deviceProgramInsns([{ allow: true, type: 'b', major: null, minor: null, access: 'm' }]);
  t.same(m.slice(6), [
    { code: OP.JNE_K, dst: 2, src: 0, off: 5, imm: DEVCG.BLOCK },
    { code: OP.MOV_X, dst: 1, src: 3, off: 0, imm: 0 },
    { code: OP.AND_K, dst: 1, src: 0, off: 0, imm: DEVCG.READ | DEVCG.WRITE },
    { code: OP.JNE_K, dst: 1, src: 0, off: 2, imm: 0 },
    { code: OP.MOV_K, dst: 0, src: 0, off: 0, imm: 1 },
    { code: OP.EXIT, dst: 0, src: 0, off: 0, imm: 0 },
    { code: OP.MOV_K, dst: 0, src: 0, off: 0, imm: 1 },
    { code: OP.EXIT, dst: 0, src: 0, off: 0, imm: 0 },
  ]);
});

t.test('podman: deny all, then the defaults', async (t) => {
  const p = deviceProgramInsns(deviceRules([{ allow: false, access: 'rwm' }]));
  const cases: [type: 'b' | 'c', major: number, minor: number, access: string, allowed: number][] = [
    ['c', 1, 3, 'rw', 1], // /dev/null
    ['c', 1, 7, 'r', 1], // /dev/full
    ['c', 1, 11, 'r', 0], // /dev/kmsg
    ['c', 5, 2, 'rw', 1], // /dev/ptmx
    ['c', 136, 4, 'rw', 1], // a pty slave
    ['c', 10, 200, 'rwm', 1], // /dev/net/tun
    ['c', 10, 229, 'rw', 0], // /dev/fuse
    ['b', 8, 0, 'r', 0], // /dev/sda
    ['b', 8, 0, 'm', 1], // mknod of any block device
    ['c', 4, 1, 'm', 1], // mknod of any char device
    ['c', 4, 1, 'mr', 0],
  ];
  for (const [type, major, minor, access, want] of cases) t.equal(run(p, type, major, minor, access), want, `${type} ${major}:${minor} ${access}`);
});

t.test('later rules override earlier ones', async (t) => {
  const p = deviceProgramInsns(
    deviceRules([
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 10, access: 'rwm' },
      { allow: false, type: 'c', major: 10, minor: 229, access: 'w' },
    ]),
  );
  t.equal(run(p, 'c', 10, 1, 'rw'), 1, 'c 10:* allowed');
  t.equal(run(p, 'c', 10, 229, 'r'), 1, 'fuse read: the deny is only for w');
  t.equal(run(p, 'c', 10, 229, 'rw'), 0, 'fuse write denied');
  const open = deviceProgramInsns(deviceRules([{ allow: false, type: 'c', major: 1, minor: 3, access: 'w' }]));
  t.equal(run(open, 'b', 8, 0, 'rw'), 1, 'no deny-all: everything else allowed, as on v1');
  t.equal(run(open, 'c', 1, 3, 'w'), 1, 'the defaults (allow c 1:3 rwm) come after and win');
  const allowAll = deviceProgramInsns(deviceRules([{ allow: true, access: 'rwm' }]));
  t.equal(run(allowAll, 'b', 8, 0, 'rwm'), 1);
});

t.test('out-of-range numbers are refused', async (t) => {
  t.throws(() => deviceProgramInsns([{ allow: true, type: 'c', major: 2 ** 32, minor: null, access: 'r' }]), {
    message: 'device rule major 4294967296: out of range for a device number',
  });
});

/** Indices of instructions no path reaches (the verifier rejects a program with any). */
function unreachable(insns: readonly BpfInsn[]): number[] {
  const seen = new Set<number>();
  const todo = [0];
  while (todo.length > 0) {
    const pc = todo.pop()!;
    if (pc >= insns.length || seen.has(pc)) continue;
    seen.add(pc);
    const x = insns[pc]!;
    if (x.code === OP.EXIT) continue;
    todo.push(pc + 1);
    if (x.code === OP.JEQ_K || x.code === OP.JNE_K) todo.push(pc + 1 + x.off);
  }
  return insns.map((_, i) => i).filter((i) => !seen.has(i));
}

t.test('every instruction is reachable, and every path exits', async (t) => {
  const lists = [
    [],
    [{ allow: false, access: 'rwm' }],
    [{ allow: true, access: 'rwm' }],
    [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, access: 'r' }, { allow: false, access: 'rwm' }, { allow: true, type: 'b', access: 'm' }],
  ] as const;
  for (const l of lists) {
    const insns = deviceProgramInsns(deviceRules(l.map((r) => ({ ...r }))));
    t.same(unreachable(insns), [], JSON.stringify(l));
    t.equal(insns.at(-1)?.code, OP.EXIT, 'ends in exit');
  }
});
