#!/usr/bin/env node
/*
 * esbuild, with the one thing its command line cannot do: leave zod's translated error messages
 * out. zod 4 re-exports every locale (≈390 KB of source, 40 languages) from its index; tsrun
 * reports errors in English only, so the locales index is replaced by one exporting `en` alone.
 * That source would otherwise sit in every shim's heap and in the tsrun startup snapshot.
 *
 *   node scripts/bundle.cjs ENTRY [esbuild flags…] [--snapshot-require]
 *
 * Takes the esbuild command-line flags the Makefile uses (--bundle, --platform=, --target=,
 * --format=, --minify-whitespace, --external:M, --loader:.EXT=L, --log-level=, --banner:js=,
 * --footer:js=, --define:K=V, --outfile=); any other flag is an error, not ignored.
 *
 * --snapshot-require wraps the bundle for a V8 startup snapshot (the CLI's, runtime/cli/startup):
 * it runs inside a function whose `require` is snapshotRequire's. The snapshot builder's
 * `require` loads built-in modules only, so koffi (external) is loaded from beside the bundle at
 * run time, and node:child_process, which node does not support in a snapshot, is a proxy that
 * requires it on first use.
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

/**
 * The `require` a snapshot bundle runs with, made from the one in scope (the builder's, or at
 * run time node's). Its source is written into the bundle, so it must stand alone.
 */
function snapshotRequire(require) {
  return (id) =>
    id === 'koffi'
      ? require('node:module').createRequire(process.argv[1])(id)
      : id === 'node:child_process'
        ? new Proxy({}, { get: (_, k) => require(id)[k] })
        : require(id);
}

/** The banner and footer that make a bundle run with snapshotRequire. */
const SNAPSHOT_WRAP = { banner: '(function (require) {', footer: `})((${snapshotRequire.toString()})(require));` };

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
    else if (a === '--snapshot-require') o.snapshotRequire = true;
    else throw new Error(`bundle.cjs: unsupported flag ${a}`);
  }
  if (o.entryPoints.length !== 1 || o.outfile === undefined) throw new Error('usage: bundle.cjs ENTRY --outfile=FILE [esbuild flags…]');
  if (o.snapshotRequire) {
    if (o.banner !== undefined || o.footer !== undefined) throw new Error('bundle.cjs: --snapshot-require makes its own banner and footer');
    o.banner = { js: SNAPSHOT_WRAP.banner };
    o.footer = { js: SNAPSHOT_WRAP.footer };
  }
  delete o.snapshotRequire;
  return o;
}

module.exports = { parse, snapshotRequire, SNAPSHOT_WRAP };

if (require.main === module) {
  esbuild.build(parse(process.argv.slice(2))).catch((e) => {
    if (!(e && Array.isArray(e.errors))) console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
