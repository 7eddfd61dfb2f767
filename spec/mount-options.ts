/*
 * mounts[].options → mount(2) flags, propagation changes, mount_setattr(2) recursive attributes
 * and the filesystem data string. Pure: no I/O.
 *
 * Which option means what follows mount(8) "FILESYSTEM-INDEPENDENT MOUNT OPTIONS" and the
 * runtime-spec 1.2 option table (config.md#linux-mount-options). Options are applied left to
 * right, so `ro,rw` ends read-write. Anything not in the tables is filesystem data and is passed
 * on, comma-joined in order, as mount(2)'s fifth argument (`mode=755`, `size=65536k`,
 * `newinstance`, …), as the spec asks and runc does.
 */
import { TsrunError } from './errors';
import { quote } from './describe';

/** mount(2) flag MS_RDONLY: read-only. */
export const MS_RDONLY = 1;
/** mount(2) flag MS_NOSUID: ignore set-user-id and set-group-id bits. */
export const MS_NOSUID = 2;
/** mount(2) flag MS_NODEV: no device files. */
export const MS_NODEV = 4;
/** mount(2) flag MS_NOEXEC: no program execution. */
export const MS_NOEXEC = 8;
/** mount(2) flag MS_SYNCHRONOUS: synchronous writes. */
export const MS_SYNCHRONOUS = 16;
/** mount(2) flag MS_REMOUNT: change the flags of an existing mount. */
export const MS_REMOUNT = 32;
/** mount(2) flag MS_MANDLOCK: allow mandatory locks (removed in Linux 5.15). */
export const MS_MANDLOCK = 64;
/** mount(2) flag MS_DIRSYNC: synchronous directory changes. */
export const MS_DIRSYNC = 128;
/** mount(2) flag MS_NOSYMFOLLOW: do not follow symlinks (Linux 5.10). */
export const MS_NOSYMFOLLOW = 256;
/** mount(2) flag MS_NOATIME: never update access times. */
export const MS_NOATIME = 1024;
/** mount(2) flag MS_NODIRATIME: never update directory access times. */
export const MS_NODIRATIME = 2048;
/** mount(2) flag MS_BIND: bind mount. */
export const MS_BIND = 4096;
/** mount(2) flag MS_MOVE: move a mount. */
export const MS_MOVE = 8192;
/** mount(2) flag MS_REC: recursive (bind or propagation change). */
export const MS_REC = 16384;
/** mount(2) flag MS_SILENT: suppress some kernel messages. */
export const MS_SILENT = 32768;
/** mount(2) propagation MS_UNBINDABLE. */
export const MS_UNBINDABLE = 1 << 17;
/** mount(2) propagation MS_PRIVATE. */
export const MS_PRIVATE = 1 << 18;
/** mount(2) propagation MS_SLAVE. */
export const MS_SLAVE = 1 << 19;
/** mount(2) propagation MS_SHARED. */
export const MS_SHARED = 1 << 20;
/** mount(2) flag MS_RELATIME: update access times relative to modification times. */
export const MS_RELATIME = 1 << 21;
/** mount(2) flag MS_I_VERSION: update inode i_version. */
export const MS_I_VERSION = 1 << 23;
/** mount(2) flag MS_STRICTATIME: always update access times. */
export const MS_STRICTATIME = 1 << 24;
/** mount(2) flag MS_LAZYTIME: update times lazily. */
export const MS_LAZYTIME = 1 << 25;

/** mount_setattr(2) MOUNT_ATTR_RDONLY (linux/mount.h). */
export const MOUNT_ATTR_RDONLY = 0x00000001;
/** mount_setattr(2) MOUNT_ATTR_NOSUID. */
export const MOUNT_ATTR_NOSUID = 0x00000002;
/** mount_setattr(2) MOUNT_ATTR_NODEV. */
export const MOUNT_ATTR_NODEV = 0x00000004;
/** mount_setattr(2) MOUNT_ATTR_NOEXEC. */
export const MOUNT_ATTR_NOEXEC = 0x00000008;
/** mount_setattr(2) MOUNT_ATTR__ATIME: the mask of the three atime values below. */
export const MOUNT_ATTR__ATIME = 0x00000070;
/** mount_setattr(2) MOUNT_ATTR_RELATIME (zero: it is the absence of the other two). */
export const MOUNT_ATTR_RELATIME = 0x00000000;
/** mount_setattr(2) MOUNT_ATTR_NOATIME. */
export const MOUNT_ATTR_NOATIME = 0x00000010;
/** mount_setattr(2) MOUNT_ATTR_STRICTATIME. */
export const MOUNT_ATTR_STRICTATIME = 0x00000020;
/** mount_setattr(2) MOUNT_ATTR_NODIRATIME. */
export const MOUNT_ATTR_NODIRATIME = 0x00000080;
/** mount_setattr(2) MOUNT_ATTR_IDMAP. */
export const MOUNT_ATTR_IDMAP = 0x00100000;
/** mount_setattr(2) MOUNT_ATTR_NOSYMFOLLOW. */
export const MOUNT_ATTR_NOSYMFOLLOW = 0x00200000;

/** What a mount's options ask for, ready for mount(2) and mount_setattr(2). */
export interface MountOptions {
  /** MS_* flags to set in the mount(2) call (includes MS_BIND, and MS_REC for rbind). */
  readonly flags: number;
  /** MS_* flags an option explicitly cleared (`rw`, `suid`, …), for remounts that must drop them. */
  readonly clearFlags: number;
  /** The last propagation option (MS_SHARED/SLAVE/PRIVATE/UNBINDABLE, with MS_REC for r*), or 0. */
  readonly propagation: number;
  /** Every propagation option in order, for callers that apply them one by one as runc does. */
  readonly propagations: readonly number[];
  /** Unknown options, comma-joined in order: mount(2)'s filesystem data. */
  readonly data: string;
  /** MOUNT_ATTR_* to set recursively with mount_setattr(AT_RECURSIVE) (rro, rnosuid, …). */
  readonly recAttrSet: number;
  /** MOUNT_ATTR_* to clear recursively (rrw, rsuid, …; MOUNT_ATTR__ATIME when an r*atime is set). */
  readonly recAttrClr: number;
  /** `bind` or `rbind` was given. */
  readonly isBind: boolean;
  /** `rbind` was given. */
  readonly isRecursiveBind: boolean;
  /** `idmap` or `ridmap` was given: apply the mount's id mapping with MOUNT_ATTR_IDMAP. */
  readonly isIdmap: boolean;
  /** `ridmap` was given: apply the id mapping to the whole bind tree. */
  readonly isRecursiveIdmap: boolean;
  /** `tmpcopyup` was given: copy the directory's old contents into the new tmpfs. */
  readonly isTmpcopyup: boolean;
}

/** Options that set (`true`) or clear (`false`) one mount(2) flag. */
const FLAG_OPTIONS: Readonly<Record<string, readonly [boolean, number]>> = {
  defaults: [false, 0],
  ro: [true, MS_RDONLY],
  rw: [false, MS_RDONLY],
  nosuid: [true, MS_NOSUID],
  suid: [false, MS_NOSUID],
  nodev: [true, MS_NODEV],
  dev: [false, MS_NODEV],
  noexec: [true, MS_NOEXEC],
  exec: [false, MS_NOEXEC],
  sync: [true, MS_SYNCHRONOUS],
  async: [false, MS_SYNCHRONOUS],
  remount: [true, MS_REMOUNT],
  mand: [true, MS_MANDLOCK],
  nomand: [false, MS_MANDLOCK],
  dirsync: [true, MS_DIRSYNC],
  nosymfollow: [true, MS_NOSYMFOLLOW],
  symfollow: [false, MS_NOSYMFOLLOW],
  noatime: [true, MS_NOATIME],
  atime: [false, MS_NOATIME],
  nodiratime: [true, MS_NODIRATIME],
  diratime: [false, MS_NODIRATIME],
  silent: [true, MS_SILENT],
  loud: [false, MS_SILENT],
  relatime: [true, MS_RELATIME],
  norelatime: [false, MS_RELATIME],
  iversion: [true, MS_I_VERSION],
  noiversion: [false, MS_I_VERSION],
  strictatime: [true, MS_STRICTATIME],
  nostrictatime: [false, MS_STRICTATIME],
  lazytime: [true, MS_LAZYTIME],
  nolazytime: [false, MS_LAZYTIME],
};

const PROPAGATION_OPTIONS: Readonly<Record<string, number>> = {
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
  unbindable: MS_UNBINDABLE,
  runbindable: MS_UNBINDABLE | MS_REC,
};

/**
 * Recursive attributes: [attributes to clear, attributes to set]. The atime values are not bits
 * but a 3-bit field, and the kernel refuses a partial clear of it, so every r*atime option clears
 * the whole MOUNT_ATTR__ATIME mask and sets one value: `ratime` and `rnostrictatime` mean the
 * kernel default (relatime), `rnorelatime` means update on every access (strictatime).
 */
const RECURSIVE_OPTIONS: Readonly<Record<string, readonly [number, number]>> = {
  rro: [0, MOUNT_ATTR_RDONLY],
  rrw: [MOUNT_ATTR_RDONLY, 0],
  rnosuid: [0, MOUNT_ATTR_NOSUID],
  rsuid: [MOUNT_ATTR_NOSUID, 0],
  rnodev: [0, MOUNT_ATTR_NODEV],
  rdev: [MOUNT_ATTR_NODEV, 0],
  rnoexec: [0, MOUNT_ATTR_NOEXEC],
  rexec: [MOUNT_ATTR_NOEXEC, 0],
  rnodiratime: [0, MOUNT_ATTR_NODIRATIME],
  rdiratime: [MOUNT_ATTR_NODIRATIME, 0],
  rnosymfollow: [0, MOUNT_ATTR_NOSYMFOLLOW],
  rsymfollow: [MOUNT_ATTR_NOSYMFOLLOW, 0],
  rrelatime: [MOUNT_ATTR__ATIME, MOUNT_ATTR_RELATIME],
  rnoatime: [MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME],
  rstrictatime: [MOUNT_ATTR__ATIME, MOUNT_ATTR_STRICTATIME],
  ratime: [MOUNT_ATTR__ATIME, MOUNT_ATTR_RELATIME],
  rnostrictatime: [MOUNT_ATTR__ATIME, MOUNT_ATTR_RELATIME],
  rnorelatime: [MOUNT_ATTR__ATIME, MOUNT_ATTR_STRICTATIME],
};

/** Every option name this module gives a meaning to (the rest are filesystem data). */
export const KNOWN_MOUNT_OPTIONS: readonly string[] = [
  ...Object.keys(FLAG_OPTIONS),
  ...Object.keys(PROPAGATION_OPTIONS),
  ...Object.keys(RECURSIVE_OPTIONS),
  'bind',
  'rbind',
  'idmap',
  'ridmap',
  'tmpcopyup',
];

/** Classify a mount's options into mount(2) flags, propagation, recursive attributes and data. */
export function parseMountOptions(options: readonly string[]): MountOptions {
  let flags = 0;
  let clearFlags = 0;
  let recAttrSet = 0;
  let recAttrClr = 0;
  const propagations: number[] = [];
  const data: string[] = [];
  let isBind = false;
  let isRecursiveBind = false;
  let isIdmap = false;
  let isRecursiveIdmap = false;
  let isTmpcopyup = false;

  for (const option of options) {
    const flag = FLAG_OPTIONS[option];
    const propagation = PROPAGATION_OPTIONS[option];
    const recursive = RECURSIVE_OPTIONS[option];
    if (flag !== undefined) {
      const [set, bit] = flag;
      if (set) {
        flags |= bit;
        clearFlags &= ~bit;
      } else {
        flags &= ~bit;
        clearFlags |= bit;
      }
    } else if (propagation !== undefined) {
      propagations.push(propagation);
    } else if (recursive !== undefined) {
      const [clear, set] = recursive;
      if (clear === MOUNT_ATTR__ATIME) {
        recAttrClr |= MOUNT_ATTR__ATIME;
        recAttrSet = (recAttrSet & ~MOUNT_ATTR__ATIME) | set;
      } else {
        recAttrClr = (recAttrClr | clear) & ~set;
        recAttrSet = (recAttrSet & ~clear) | set;
      }
    } else if (option === 'bind' || option === 'rbind') {
      isBind = true;
      flags |= MS_BIND;
      if (option === 'rbind') {
        isRecursiveBind = true;
        flags |= MS_REC;
      }
    } else if (option === 'idmap' || option === 'ridmap') {
      isIdmap = true;
      if (option === 'ridmap') isRecursiveIdmap = true;
    } else if (option === 'tmpcopyup') {
      isTmpcopyup = true;
    } else {
      data.push(option);
    }
  }
  return {
    flags,
    clearFlags,
    propagation: propagations[propagations.length - 1] ?? 0,
    propagations,
    data: data.join(','),
    recAttrSet,
    recAttrClr,
    isBind,
    isRecursiveBind,
    isIdmap,
    isRecursiveIdmap,
    isTmpcopyup,
  };
}

/** The mount(2) propagation flags for a `linux.rootfsPropagation` value, e.g. "rslave" → MS_SLAVE|MS_REC. */
export function rootfsPropagationFlags(value: string): number {
  const flags = PROPAGATION_OPTIONS[value];
  if (flags === undefined) {
    throw new TsrunError('InvalidArgument', `linux.rootfsPropagation: unknown propagation ${quote(value)}`);
  }
  return flags;
}
