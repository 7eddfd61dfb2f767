#!/usr/bin/env node
/*
 * esbuild, with the one thing its command line cannot do: leave zod's translated error messages
 * out. zod 4 re-exports every locale (≈390 KB of source, 40 languages) from its index; tsrun
 * reports errors in English only, so the locales index is replaced by one exporting `en` alone.
 * That source would otherwise sit in every shim's heap and in the tsrun startup snapshot.
 *
 *   node scripts/bundle.cjs ENTRY [esbuild flags…]
 *
 * Takes the esbuild command-line flags the Makefile uses (--bundle, --platform=, --target=,
 * --format=, --minify-whitespace, --external:M, --loader:.EXT=L, --log-level=, --banner:js=,
 * --footer:js=, --define:K=V, --outfile=); any other flag is an error, not ignored.
 */
'use strict';
const path = require('node:path');
const esbuild = require('esbuild');

const ZOD_LOCALES = /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/;

/** Only `en` of zod's locales (the rest of zod imports en.js directly). */
const englishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onLoad({ filter: ZOD_LOCALES }, (args) => ({
      contents: 'export { default as en } from "./en.js";\n',
      loader: 'js',
      resolveDir: path.dirname(args.path),
    }));
  },
};

function parse(argv) {
  const o = { entryPoints: [], external: [], loader: {}, define: {}, plugins: [englishOnly] };
  for (const a of argv) {
    const eq = a.indexOf('=');
    const key = eq < 0 ? a : a.slice(0, eq);
    const value = eq < 0 ? undefined : a.slice(eq + 1);
    if (!a.startsWith('--')) o.entryPoints.push(a);
    else if (a === '--bundle') o.bundle = true;
    else if (a === '--minify-whitespace') o.minifyWhitespace = true;
    else if (key === '--platform') o.platform = value;
    else if (key === '--target') o.target = value;
    else if (key === '--format') o.format = value;
    else if (key === '--log-level') o.logLevel = value;
    else if (key === '--outfile') o.outfile = value;
    else if (a.startsWith('--external:')) o.external.push(a.slice('--external:'.length));
    else if (a.startsWith('--loader:') && value !== undefined) o.loader[key.slice('--loader:'.length)] = value;
    else if (a.startsWith('--define:') && value !== undefined) o.define[key.slice('--define:'.length)] = value;
    else if (key === '--banner:js') o.banner = { js: value };
    else if (key === '--footer:js') o.footer = { js: value };
    else throw new Error(`bundle.cjs: unsupported flag ${a}`);
  }
  if (o.entryPoints.length !== 1 || o.outfile === undefined) throw new Error('usage: bundle.cjs ENTRY --outfile=FILE [esbuild flags…]');
  return o;
}

esbuild.build(parse(process.argv.slice(2))).catch((e) => {
  if (!(e && Array.isArray(e.errors))) console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
