/**
 * `ecs-secrets config`: configuration documents (YAML/JSON, `_ecs_secret` fields encrypted, SOPS
 * files). The subcommands are their own modules in config/; the parser registers them here.
 */
import { defineCommand } from '../command';
import { configBuildCommand } from './config/build';
import { configDecryptCommand } from './config/decrypt';
import { configDiffCommand } from './config/diff';
import { configEncryptCommand } from './config/encrypt';
import { configHistoryCommand } from './config/history';
import { configListCommand } from './config/list';
import { configPushCommand } from './config/push';
import { configRevokeCommand } from './config/revoke';

export const configCommand = defineCommand<object>({
  command: 'config',
  describe:
    'Configuration documents with encrypted _ecs_secret fields (SOPS-compatible): push, build, encrypt, decrypt, list, history, revoke, diff',
  builder: (c) =>
    c.demandCommand(1, 'name a config subcommand: push, build, encrypt, decrypt, list, history, revoke or diff'),
  run: async () => undefined,
  subcommands: [
    configPushCommand,
    configBuildCommand,
    configEncryptCommand,
    configDecryptCommand,
    configListCommand,
    configHistoryCommand,
    configRevokeCommand,
    configDiffCommand,
  ],
});
