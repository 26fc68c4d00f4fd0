// Lint: type-aware rules that catch unhandled promises, plus a guard that keeps
// wall-clock time and timers out of the sans-I/O protocol cores (DESIGN.md, Principle 2).
import tseslint from 'typescript-eslint';

const noAmbientTime = {
  'no-restricted-properties': ['error',
    { object: 'Date', property: 'now', message: 'Protocol cores take time from a Clock (src/core/clock.ts).' },
    { object: 'performance', property: 'now', message: 'Protocol cores take time from a Clock (src/core/clock.ts).' },
  ],
  'no-restricted-globals': ['error',
    { name: 'setTimeout', message: 'Protocol cores schedule through a Clock.' },
    { name: 'setInterval', message: 'Protocol cores schedule through a Clock.' },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'coverage/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test's test()/describe() return promises the runner itself awaits.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error', 'warn'] }],
    },
  },
  {
    // Everything below the adapters: time only through a Clock. The clock itself and the
    // I/O adapters (session, listener, transports) are the only places that touch timers.
    files: ['src/core/**/*.ts', 'src/wire/**/*.ts', 'src/secure/**/*.ts', 'src/mux/**/*.ts', 'src/peer/**/*.ts', 'src/node/**/*.ts'],
    ignores: ['src/core/clock.ts', 'src/secure/session.ts', 'src/secure/listener.ts'],
    rules: noAmbientTime,
  },
  { files: ['bench/**/*.ts', 'test/**/*.ts', 'examples/**/*.ts', 'src/cli/**/*.ts'], rules: { 'no-console': 'off' } },
);
