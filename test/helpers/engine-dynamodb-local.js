// jest setupFiles of the "dynamodb-local" project (jest.config.js): this test file's stand-ins
// forward to Amazon DynamoDB Local instead of serving from dynalite (test/standins/dynamodb-local.ts).
process.env.ECS_SECRETS_TEST_DYNAMODB = 'dynamodb-local';
