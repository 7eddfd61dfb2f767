/*
 * `make gen` and `make check-generated`: every generated file in the repository, from its one
 * definition. Without arguments it (re)writes them; with --check it writes nothing, names each
 * stale file with a diff hint, and exits 1 if there is one.
 *
 *   native-helpers/plan_ops.h        ← runtime/plan/ops.ts       (scripts/gen-plan-header.ts)
 *   native-helpers/tsrun.h           ← runtime/native/exports.ts (scripts/gen-native.ts)
 *   native-helpers/addon_exports.h   ← runtime/native/exports.ts
 *   runtime/native/native-lib.ts     ← runtime/native/exports.ts
 *   supervisor/proto/descriptor.ts   ← supervisor/proto/schema.ts (scripts/gen-proto.ts)
 *
 * `gen.ts launcher TEMPLATE NODE DIR` prints bin/tsrun: runtime/cli/startup/launcher.sh with the
 * node, its directory and the verb lists of runtime/cli/verbs.ts filled in.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderHeader as renderPlanHeader } from './gen-plan-header';
import { renderNativeFiles } from './gen-native';
import { renderProtoDescriptor } from './gen-proto';
import { renderLauncher } from '../runtime/cli/startup/launcher';

/** Every generated file, by path relative to the repository root. */
export function generatedFiles(): Record<string, string> {
  return { 'native-helpers/plan_ops.h': renderPlanHeader(), ...renderNativeFiles(), 'supervisor/proto/descriptor.ts': renderProtoDescriptor() };
}

function main(argv: readonly string[]): number {
  if (argv[0] === 'launcher') {
    const [, template, node, dir] = argv;
    if (template === undefined || node === undefined || dir === undefined) throw new Error('usage: gen.cjs launcher TEMPLATE NODE DIR');
    process.stdout.write(renderLauncher(fs.readFileSync(template, 'utf8'), node, dir));
    return 0;
  }
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
