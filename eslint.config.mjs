// ESLint flat config (`npm run lint`). Rules that catch real bugs, not style: formatting is
// left to the authors (and `cargo fmt` for Rust). lib/ is linted with type information
// (lib/tsconfig via the project service), so promise misuse is caught.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// Kept off on purpose, each for a reason that holds across lib/:
const off = {
  // The binding and Express hand over untyped values at the edges; typing them all is
  // the layering work's job, and these rules would bury the real findings (~700 of them).
  '@typescript-eslint/no-explicit-any': 'off',
  '@typescript-eslint/no-unsafe-member-access': 'off',
  '@typescript-eslint/no-unsafe-call': 'off',
  '@typescript-eslint/no-unsafe-assignment': 'off',
  '@typescript-eslint/no-unsafe-argument': 'off',
  '@typescript-eslint/no-unsafe-return': 'off',
  // Lazy `require()`s that dodge import cycles are removed by the layering work, whose
  // own test forbids them; `lib/native.ts` loads the addon with `require` by design.
  '@typescript-eslint/no-require-imports': 'off',
  // Wrappers rethrow whatever the caller's function threw, unchanged (drop-in semantics).
  '@typescript-eslint/prefer-promise-reject-errors': 'off',
  // Async functions that do not await keep a Promise-returning public signature.
  '@typescript-eslint/require-await': 'off',
  // Style, not bugs: `unknown | X` documents intent; a redundant assertion is harmless.
  '@typescript-eslint/no-redundant-type-constituents': 'off',
  '@typescript-eslint/no-unnecessary-type-assertion': 'off',
  // Our "methods" are closures returned in object literals (`{ write, read }`), never
  // `this`-bound, so every report is a false positive.
  '@typescript-eslint/unbound-method': 'off',
};

export default tseslint.config(
  {
    ignores: [
      // A template the testing-kit test fills in (placeholders, not code) per runner.
      '__test__/fixtures/testing-kit/spec.template.js',
      'dist/', 'target/', 'node_modules/', 'docs/api/', 'index.js', 'index.d.ts', 'npm/', 'fuzz/',
      '.tmp/', 'benchmark/results/', 'benchmark/charts/', '**/node_modules/', 'dashboard/', 'demo/public/',
    ],
  },
  // The `eslint-disable` comments in lib/ name rules another config once had; they go
  // with the code they sit on (the lazy requires), so stale ones are not reported.
  { linterOptions: { reportUnusedDisableDirectives: 'off' } },
  {
    files: ['lib/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      ...off,
      eqeqeq: ['error', 'smart'],
      // The binding hands back plain numbers (ring slots, transition words) and the
      // protocol's names are its const enums: comparing the two is the point.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      // `import { native, type Binding }` is required even where unused: it names the
      // binding's types in the emitted .d.ts (see lib/native.ts).
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^(Binding|_)', argsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
    rules: {
      eqeqeq: ['error', 'smart'],
      // `catch {}` that deliberately ignores (best-effort cleanup) is fine; other empty blocks are not.
      'no-empty': ['error', { allowEmptyCatch: true }],
      'no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  { files: ['**/*.mjs'], languageOptions: { sourceType: 'module' } },
  // Tests check hostile input on purpose (control characters in regexes).
  { files: ['__test__/**'], rules: { 'no-control-regex': 'off' } },
  // Code run in the browser through playwright's page.evaluate.
  { files: ['__test__/dashboard.test.js'], languageOptions: { globals: { ...globals.browser } } },
  { files: ['__test__/fixtures/consumers/**'], languageOptions: { globals: { ...globals.jest } } },
  { files: ['__test__/fixtures/testing-kit/**'], languageOptions: { globals: { ...globals.jest } } },
);
