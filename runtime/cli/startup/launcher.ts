/*
 * bin/tsrun from launcher.sh: the template's placeholders filled in. The lists come from verbs.ts,
 * so the launcher sends to the lifecycle bundle exactly the verbs that bundle runs, and skips the
 * values of exactly the global flags that take one. scripts/gen.ts runs this for the Makefile.
 */
import { fastVerbs, globalValueFlags } from '../verbs';

/** launcher.sh with @NODE@ (the node that built the snapshots), @DIR@ ('' = find it at run time) and the verb lists filled in. */
export function renderLauncher(template: string, node: string, dir: string): string {
  const fill: Record<string, string> = {
    '@NODE@': node,
    '@DIR@': dir,
    '@LIFECYCLE_VERBS@': fastVerbs('lifecycle').join(' | '),
    '@GLOBAL_VALUE_FLAGS@': globalValueFlags().join(' | '),
  };
  const out = template.replace(/@[A-Z_]+@/g, (m) => {
    const v = fill[m];
    if (v === undefined) throw new Error(`launcher.sh: unknown placeholder ${m}`);
    return v;
  });
  for (const k of Object.keys(fill)) if (!template.includes(k)) throw new Error(`launcher.sh: no ${k} to fill in`);
  return out;
}
