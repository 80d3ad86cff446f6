// ESLint: typescript-eslint's strict type-aware rules, no import cycles, and the layer map of
// ARCHITECTURE.md (a module imports only from its own layer or the layers below it).
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Top to bottom: files and folders (everything under a folder). A file in src/ not named here
// belongs to no layer and is not checked: name each new top-level file or folder.
const LAYERS = [
  { name: 'cli', files: ['src/main.ts', 'src/cli.ts', 'src/commands', 'src/report'] },
  { name: 'run', files: ['src/run.ts', 'src/plan.ts', 'src/journal.ts', 'src/backup/restore.ts', 'src/doctor'] },
  { name: 'phases', files: ['src/phases', 'src/events.ts', 'src/backup/manifest.ts'] },
  { name: 'model', files: ['src/ownership.ts', 'src/inspect.ts', 'src/profiles', 'src/distros'] },
  { name: 'host', files: ['src/host'] },
  { name: 'base', files: ['src/parse', 'src/util', 'src/errors.ts', 'src/backup/tar.ts'] },
];

const layerZones = LAYERS.slice(1).map((layer, i) => ({
  target: layer.files.map((f) => `./${f}`),
  from: LAYERS.slice(0, i + 1).flatMap((upper) => upper.files.map((f) => `./${f}`)),
  message: `the ${layer.name} layer may not import from a layer above it (see ARCHITECTURE.md)`,
}));

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'fixtures/', 'deploy/'] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs', 'bench/*.cjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', { zones: layerZones }],
      // Numbers in messages and shell text are what the code means, and so is a null exit code or an
      // absent value printed as such in an error message; objects and any stay errors.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowAny: false, allowBoolean: false, allowNullish: true, allowRegExp: false, allowNever: false, allowNumber: true },
      ],
      // `!` marks an index or lookup the code has just proven valid (noUncheckedIndexedAccess is on);
      // where a value may really be missing the code checks it instead.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Hosts and phases implement async interfaces; a body with no await still keeps throws as rejections.
      '@typescript-eslint/require-await': 'off',
      // Both ask to drop checks and conversions where a type is narrower than what arrives at run
      // time (isTTY is undefined off a terminal, spawn output on a failed spawn, caught errors cast
      // to Error, JSON from ip and nft): the defensive code stays.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-unnecessary-type-conversion': 'off',
      // The TTY test and reporter match ANSI escape sequences on purpose.
      'no-control-regex': 'off',
      // main.ts loads the TTY reporter (chalk, ora) only on a terminal, synchronously, in a CommonJS
      // bundle; util/lazy.ts the modules few commands use (start-up).
      '@typescript-eslint/no-require-imports': ['error', { allow: ['/report/tty\\.js$', '^node:crypto$', '^node:readline$', '^yaml$'] }],
    },
  },
  {
    files: ['test/**'],
    rules: {
      // Tests read the CLI's JSON output (JSON.parse gives any) and assert on it: a wrong shape fails the assertion.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable' } },
    // A CommonJS file loads its dependencies with require().
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
