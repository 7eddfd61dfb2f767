/*
 * `make gen` and `make check-generated`: every generated file in the repository, from its one
 * definition. Without arguments it (re)writes them; with --check it writes nothing, names each
 * stale file with a diff hint, and exits 1 if there is one.
 *
 *   native-helpers/plan_ops.h        ← runtime/plan/ops.ts       (scripts/gen-plan-header.ts)
 *   native-helpers/tsrun.h           ← runtime/native/exports.ts (scripts/gen-native.ts)
 *   native-helpers/addon_exports.h   ← runtime/native/exports.ts
 *   runtime/native/native-lib.ts     ← runtime/native/exports.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderHeader as renderPlanHeader } from './gen-plan-header';
import { renderNativeFiles } from './gen-native';

/** Every generated file, by path relative to the repository root. */
export function generatedFiles(): Record<string, string> {
  return { 'native-helpers/plan_ops.h': renderPlanHeader(), ...renderNativeFiles() };
}

function main(argv: readonly string[]): number {
  const check = argv.includes('--check');
  const root = process.cwd();
  let stale = 0;
  for (const [file, text] of Object.entries(generatedFiles())) {
    const where = path.join(root, file);
    let now: string | undefined;
    try {
      now = fs.readFileSync(where, 'utf8');
    } catch {
      now = undefined;
    }
    if (now === text) continue;
    if (check) {
      process.stderr.write(`${file} is stale (${now === undefined ? 'missing' : 'differs from its definition'}): run 'make gen'\n`);
      stale++;
    } else {
      fs.writeFileSync(`${where}.tmp`, text);
      fs.renameSync(`${where}.tmp`, where);
      process.stdout.write(`wrote ${file}\n`);
    }
  }
  return stale === 0 ? 0 : 1;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
