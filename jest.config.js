/** Tests are TypeScript, transpiled by ts-jest without type checking (isolatedModules): `npm test` runs `tsc` first,
 * which type-checks everything once and builds the CLI that end-to-end tests spawn. */
const fs = require('node:fs');
const path = require('node:path');

// Tests that build SDK clients in-process would print the SDK's Node 20 support warning; the CLI
// silences it itself (tested by spawning it with a clean environment, see test/helpers/cli.ts).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const base = {
  testEnvironment: 'node',
  rootDir: __dirname,
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 60000,
};

/**
 * Issue 12, property 14: every end-to-end and reliability suite that runs against the DynamoDB
 * stand-in runs twice, on dynalite and on Amazon DynamoDB Local (AWS's own engine, forwarded
 * through the same stand-in: test/standins/dynamodb-local.ts). The second run needs
 * DynamoDBLocal.jar (DYNAMODB_LOCAL_JAR, or the amplify-dynamodb-simulator package) and Java; without
 * them it is left out, and said so.
 */
function dynamoDbLocalJar() {
  if (process.env.DYNAMODB_LOCAL_JAR)
    return fs.existsSync(process.env.DYNAMODB_LOCAL_JAR) ? process.env.DYNAMODB_LOCAL_JAR : undefined;
  try {
    const jar = path.join(
      path.dirname(require.resolve('amplify-dynamodb-simulator/package.json')),
      'emulator',
      'DynamoDBLocal.jar',
    );
    return fs.existsSync(jar) ? jar : undefined;
  } catch {
    return undefined;
  }
}

/** The suites under e2e/ and reliability/ that start the stand-ins (the others use --local only). */
function suitesOnStandIns() {
  return ['e2e', 'reliability']
    .flatMap((dir) =>
      fs.readdirSync(path.join(__dirname, 'test', dir)).map((f) => path.join(__dirname, 'test', dir, f)),
    )
    .filter((f) => f.endsWith('.test.ts') && /\bstartStandIns\(/.test(fs.readFileSync(f, 'utf8')));
}

const projects = [{ ...base, displayName: 'dynalite', testMatch: ['**/*.test.ts'] }];
if (dynamoDbLocalJar()) {
  projects.push({
    ...base,
    displayName: 'dynamodb-local',
    testMatch: suitesOnStandIns(),
    setupFiles: ['<rootDir>/test/helpers/engine-dynamodb-local.js'],
  });
} else if (process.env.ECS_SECRETS_TEST_DYNAMODB === 'dynamodb-local') {
  throw new Error('ECS_SECRETS_TEST_DYNAMODB=dynamodb-local, but no DynamoDBLocal.jar: set DYNAMODB_LOCAL_JAR');
} else {
  process.stderr.write(
    'jest.config.js: DynamoDB Local not installed (DYNAMODB_LOCAL_JAR unset): suites run on dynalite only\n',
  );
}

module.exports = {
  projects,
  testTimeout: 60000,
  maxWorkers: 2,
};
