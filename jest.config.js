/** Tests are TypeScript, transpiled one file at a time by esbuild (test/transform.js) without type
 * checking: `npm test` runs `tsc` first, which type-checks everything once and builds the CLI that
 * end-to-end tests spawn. */

// Tests that build SDK clients in-process would print the SDK's Node 20 support warning; the CLI
// silences it itself (tested by spawning it with a clean environment, see test/helpers/cli.ts).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const base = {
  testEnvironment: 'node',
  rootDir: __dirname,
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': '<rootDir>/test/transform.js' },
  testTimeout: 60000,
};

/**
 * Every suite runs on dynalite. To run the suites that use the stand-ins against a real DynamoDB
 * (an AWS account), set ECS_SECRETS_TEST_DYNAMODB_ENDPOINT: the DynamoDB stand-in then relays to it
 * (test/standins/dynamodb-upstream.ts), e.g.
 *   ECS_SECRETS_TEST_DYNAMODB_ENDPOINT=https://dynamodb.eu-west-1.amazonaws.com npx jest test/e2e test/reliability
 */
const projects = [{ ...base, displayName: 'dynalite', testMatch: ['**/*.test.ts'] }];

module.exports = {
  projects,
  testTimeout: 60000,
  // Three workers on two cores: the suites spend much of their time waiting on the processes and
  // servers they start, so a third suite fills that time (a full run took ~16 % less than with two).
  maxWorkers: 3,
  testSequencer: '<rootDir>/test/sequencer.js',
};
