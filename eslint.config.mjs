// ESLint for tsrun: the rules of docs/style.md that a machine can check, and the layering of
// CONTRIBUTING.md ("Layers"). Type-aware (tsconfig.json), so no-floating-promises sees promises.
// `make lint` runs it; a rule that cannot hold somewhere is disabled on that line with a reason.
import tseslint from 'typescript-eslint';

// Each ban says what went wrong without it: the message is what a contributor reads.
const EXEC_BAN = {
  importNames: ['exec', 'execSync'],
  message:
    'a shell string is a second parser between us and the kernel: an id or path with a space, quote or ";" ' +
    'runs as shell (command injection). Use spawn/spawnSync/execFile with an argv array.',
};
const NATIVE_MSG =
  'runtime/native is the FFI boundary: only runtime/container (lifecycle), runtime/seccomp (libseccomp) and ' +
  'shim/ (reaping, fd passing) use it, so a crash or ABI change there has three callers to check (docs/architecture.md).';

/** no-restricted-imports options: the global bans plus a layer's own patterns (one rule, so merged here). */
function imports(...patterns) {
  return [
    'error',
    {
      paths: [
        { name: 'node:child_process', ...EXEC_BAN },
        { name: 'child_process', ...EXEC_BAN },
      ],
      patterns,
    },
  ];
}

// Layers: spec ← runtime ← shim ← supervisor. Relative imports are matched by the directory names
// they pass through; no layer has a sub-directory named like a layer above it.
const UP = (dirs, why) => ({ regex: `(^|/)(${dirs.join('|')})(/|$)`, message: why });
const NATIVE = { regex: '(^|/)native(/|$)', message: NATIVE_MSG };
const LAYER = {
  spec: UP(['runtime', 'shim', 'supervisor', 'bench', 'test', 'scripts'], 'spec/ is the bottom layer: it imports nothing of ours (CONTRIBUTING.md, Layers)'),
  runtime: UP(['shim', 'supervisor', 'bench', 'test'], 'runtime/ must not import shim/ or supervisor/: tsrun would carry the daemon into every CLI call, and the layers would cycle (CONTRIBUTING.md, Layers)'),
  shim: UP(['supervisor', 'bench', 'test'], 'shim/ must not import supervisor/: every shim would load the daemon (CONTRIBUTING.md, Layers)'),
  supervisor: UP(['bench', 'test'], 'production code does not import bench/ or test/'),
};

// Any write of a file under a container's rootfs must resolve the path inside the rootfs (the C
// helper's safe open); fs.writeFile follows symlinks a container can plant and writes on the host.
const WRITE_FILE_MSG =
  'fs.writeFile* follows symlinks: a path under a rootfs can be redirected to a host file by the container. ' +
  'Write under a rootfs through the C helper (plan ops, fs_resolve.c); host-side files use an atomic temp + rename writer.';
const writeFileBans = ['writeFile', 'writeFileSync'].map((property) => ({ property, message: WRITE_FILE_MSG }));

const EXIT_MSG =
  'process.exit drops pending writes (a JSON log line, a state file, a gRPC answer) and skips cleanup; ' +
  'only runtime/cli and the bin entry points exit. Throw a TsrunError instead.';
const exitBan = { object: 'process', property: 'exit', message: EXIT_MSG };

export default tseslint.config(
  { ignores: ['node_modules/**', 'build/**', 'bin/**', 'tap-snapshots/**', '.tap/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `any` switches the checker off for everything it touches; use unknown and narrow.
      '@typescript-eslint/no-explicit-any': 'error',
      // A promise nobody awaits loses its rejection: an error becomes an unhandled-rejection crash
      // or silence. Await it, or mark a deliberate fire-and-forget with `void` and a catch.
      '@typescript-eslint/no-floating-promises': 'error',
      // A require() hides a dependency from the type checker and from esbuild's static graph; the
      // few that must be lazy (start-up cost) say so on their line.
      '@typescript-eslint/no-require-imports': 'error',
      'no-restricted-imports': imports(NATIVE),
      'no-restricted-properties': ['error', exitBan],
    },
  },
  { files: ['spec/**/*.ts'], rules: { 'no-restricted-imports': imports(NATIVE, LAYER.spec) } },
  { files: ['runtime/**/*.ts'], rules: { 'no-restricted-imports': imports(NATIVE, LAYER.runtime) } },
  // The allowed users of runtime/native; runtime/native itself (its files import each other).
  { files: ['runtime/container/**/*.ts', 'runtime/seccomp/**/*.ts', 'runtime/native/**/*.ts'], rules: { 'no-restricted-imports': imports(LAYER.runtime) } },
  // runtime/native is a leaf: it is handed bytes and errno tables, never the logic that made them.
  {
    files: ['runtime/native/**/*.ts'],
    rules: {
      'no-restricted-imports': imports(
        LAYER.runtime,
        { regex: '^\\.\\./(?!plan/ops$|\\.\\./spec/errors$)', message: 'runtime/native is a leaf: it takes bytes (seccomp filters, bpf programs, plans) and imports only spec/errors and the wire constants of runtime/plan/ops' },
      ),
    },
  },
  { files: ['shim/**/*.ts'], rules: { 'no-restricted-imports': imports(LAYER.shim) } },
  { files: ['supervisor/**/*.ts'], rules: { 'no-restricted-imports': imports(NATIVE, LAYER.supervisor) } },
  // tap's t.test() returns a promise tap itself awaits: the subtests of a file run in order.
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
    },
  },
  // Tests reach any layer (they test units directly), native included.
  { files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'], rules: { 'no-restricted-imports': imports() } },
  { files: ['runtime/**/*.ts'], rules: { 'no-restricted-properties': ['error', exitBan, ...writeFileBans] } },
  // The places that decide a process's exit code: the CLI, and the entry points of tsrund,
  // tsrun-shim and tsctl (each flushes or answers before it exits).
  { files: ['runtime/cli/**/*.ts'], rules: { 'no-restricted-properties': ['error', ...writeFileBans] } },
  { files: ['supervisor/main.ts', 'shim/main.ts', 'supervisor/tsctl/main.ts'], rules: { 'no-restricted-properties': 'off' } },
);
