/** Tests are TypeScript, transpiled by ts-jest without type checking (isolatedModules): `npm test` runs `tsc` first,
 * which type-checks everything once and builds the CLI that end-to-end tests spawn. */
// Tests that build SDK clients in-process would print the SDK's Node 20 support warning; the CLI
// silences it itself (tested by spawning it with a clean environment, see test/helpers/cli.ts).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
