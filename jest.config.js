/** Tests are TypeScript, transpiled by ts-jest without type checking (isolatedModules): `npm test` runs `tsc` first,
 * which type-checks everything once and builds the CLI that end-to-end tests spawn. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
