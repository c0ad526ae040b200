/** A command's backend: opened for the application for one operation, always closed after it. */
import { type Backend, openBackend } from '../backends/open-backend';
import { validateAppName } from '../core/names';
import type { SecretsService } from '../core/secrets-service';
import type { CommandContext, GlobalArgs } from './command';

/** Open the backend for the application, run `fn` with the service, always close. */
export async function withService<T>(
  args: GlobalArgs,
  ctx: CommandContext,
  fn: (s: SecretsService) => Promise<T>,
): Promise<T> {
  return withBackend(args, ctx, (b) => fn(b.service));
}

/** Open the backend for the application, run `fn` with it (secrets and config), always close. */
export async function withBackend<T>(
  args: GlobalArgs,
  ctx: CommandContext,
  fn: (b: Backend) => Promise<T>,
): Promise<T> {
  const app = validateAppName(args['application-name']);
  const backend = await openBackend({
    app,
    local: args.local,
    dataDir: args['data-dir'],
    region: args.region,
    logger: ctx.logger,
  });
  ctx.logger.debug({ backend: backend.description }, 'backend opened');
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}
