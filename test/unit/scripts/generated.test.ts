import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generatedFiles } from '../../../scripts/gen';
import { renderAddonTable, renderHeader, renderInterface } from '../../../scripts/gen-native';
import { NATIVE_EXPORTS, abiVersion } from '../../../runtime/native/exports';

const root = path.resolve(__dirname, '..', '..', '..');

t.test('every generated file is what its definition generates (make gen)', async (t) => {
  const files = generatedFiles();
  t.same(Object.keys(files).sort(), ['native-helpers/addon_exports.h', 'native-helpers/plan_ops.h', 'native-helpers/tsrun.h', 'runtime/native/native-lib.ts', 'supervisor/proto/descriptor.ts']);
  for (const [file, text] of Object.entries(files)) {
    t.equal(fs.readFileSync(path.join(root, file), 'utf8'), text, `${file} is up to date`);
  }
});

t.test('every export of the table is in the header, the addon table and the interface', async (t) => {
  const header = renderHeader();
  const table = renderAddonTable();
  const lib = renderInterface();
  for (const e of NATIVE_EXPORTS) {
    t.match(header, `TSRUN_EXPORT int ${e.c}(`, `${e.c} declared in tsrun.h`);
    t.match(table, `{"${e.name}", th_call_${e.name}, ${e.args.length},`, `${e.name} in the addon's table`);
    t.match(table, `return ${e.c}(`, `${e.name}'s trampoline calls ${e.c}`);
    t.match(lib, `  ${e.name}(`, `${e.name} in NativeLib`);
    if (e.async) t.match(lib, `  ${e.name}Async(`, `${e.name}Async in NativeLib`);
  }
  t.match(header, `#define TSRUN_ABI_VERSION 0x${abiVersion().toString(16)}\n`, 'the header carries the table hash');
});

t.test('the C helper defines every export of the header, and exports nothing else', async (t) => {
  const sources = fs.readdirSync(path.join(root, 'native-helpers')).filter((f) => f.endsWith('.c')).map((f) => fs.readFileSync(path.join(root, 'native-helpers', f), 'utf8')).join('\n');
  const defined = new Set([...sources.matchAll(/^int (tsrun_\w+)\(/gm)].map((m) => m[1]));
  t.same([...defined].sort(), NATIVE_EXPORTS.map((e) => e.c).sort(), 'the tsrun_* functions defined in native-helpers/*.c are the table');
});

t.test('a bad table is refused', async (t) => {
  const flock = NATIVE_EXPORTS.find((e) => e.name === 'flock')!;
  t.throws(() => renderHeader([flock, flock]), /listed twice/);
  t.throws(() => renderHeader([{ ...flock, args: [{ name: 'buf', kind: 'in', ctype: 'const uint8_t *' }] }]), /needs a length/);
  t.throws(() => renderHeader([{ ...flock, args: [{ name: 'buf', kind: 'out', ctype: 'char *', len: 'fd' }, flock.args[0]!] }]), /not a u32/);
});
