/**
 * `ecs-secrets setup`: the flags and output of stack creation (the work is in src/setup/).
 * `--print-template` prints the template and calls nothing; `--local` prepares the embedded backend.
 */
import { cloudFormationClient } from '../../backends/aws';
import { validateAppName } from '../../core/names';
import { defineCommand } from '../command';

interface SetupArgs {
  'create-principal'?: string;
  'fetch-role'?: string;
  'print-template': boolean;
}

export const setupCommand = defineCommand<SetupArgs>({
  command: 'setup',
  describe:
    'Create the AWS resources for an application (a CloudFormation stack); prints the table, key, alias and IAM policies as JSON',
  builder: (c) =>
    c
      .option('create-principal', {
        type: 'string',
        describe: 'ARN of the IAM role or user that creates and revokes secrets',
      })
      .option('fetch-role', {
        type: 'string',
        describe: 'ARN of the IAM role (task role) of the tasks that read secrets',
      })
      .option('print-template', {
        type: 'boolean',
        default: false,
        describe: 'Print the CloudFormation template and exit (no AWS call)',
      })
      .example(
        '$0 setup --application-name cryptex --create-principal ADMIN_ARN --fetch-role APP_ROLE_ARN',
        'stack ECS-Secrets-cryptex',
      )
      .example('$0 setup --print-template > ecs-secrets.json', 'the template, to review or deploy yourself')
      .example('$0 setup --local --application-name cryptex', 'the embedded backend in ./.ecs-secrets'),
  run: async (args, ctx) => {
    // Loaded here, not at the top: the template and the CloudFormation calls are setup's alone, so
    // every other command starts without parsing them.
    if (args['print-template']) {
      ctx.print((require('../../setup/template') as typeof import('../../setup/template')).TEMPLATE);
      return;
    }
    const app = validateAppName(args['application-name']);
    if (args.local) {
      const { setupLocal } = require('../../setup/local') as typeof import('../../setup/local');
      if (args['create-principal'] !== undefined || args['fetch-role'] !== undefined)
        process.stderr.write('ecs-secrets: note: --create-principal and --fetch-role are not used with --local\n');
      ctx.print(await setupLocal(app, args['data-dir']));
      return;
    }
    const { validatePrincipalArn } = require('../../setup/principals') as typeof import('../../setup/principals');
    const { setupStack } = require('../../setup/stack') as typeof import('../../setup/stack');
    const createPrincipal = validatePrincipalArn(args['create-principal'], 'create-principal');
    const fetchRole = validatePrincipalArn(args['fetch-role'], 'fetch-role');
    if (createPrincipal === fetchRole)
      process.stderr.write(
        'ecs-secrets: warning: the create principal and the fetch role are the same: readers will be able to write\n',
      );
    const cfn = cloudFormationClient({ region: args.region });
    try {
      const result = await setupStack(
        { app, createPrincipal, fetchRole },
        { cfn, progress: (line) => process.stderr.write(`${line}\n`) },
      );
      ctx.print(result);
    } finally {
      cfn.destroy();
    }
  },
});
