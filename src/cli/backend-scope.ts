/** A command's backend: opened for the application for one operation, always closed after it. */
import { type Backend, openBackend } from '../backends/open-backend';
import { validateAppName } from '../core/names';
import type { SecretsService } from '../core/secrets-service';
import type { CommandContext, GlobalArgs } from './command';

/**
 * What a command does to the store: `create` may make a new embedded store (create, import,
 * config push...); `existing` needs one already there (every read, and changes to existing
 * secrets such as revoke), so a wrong --data-dir is an error rather than a new empty store.
 */
export type StoreAccess = 'create' | 'existing';

/** Open the backend for the application, run `fn` with the service, always close. */
export async function withService<T>(
  args: GlobalArgs,
  ctx: CommandContext,
  access: StoreAccess,
  fn: (s: SecretsService) => Promise<T>,
): Promise<T> {
  return withBackend(args, ctx, access, (b) => fn(b.service));
}

/** Open the backend for the application, run `fn` with it (secrets and config), always close. */
export async function withBackend<T>(
  args: GlobalArgs,
  ctx: CommandContext,
  access: StoreAccess,
  fn: (b: Backend) => Promise<T>,
): Promise<T> {
  const app = validateAppName(args['application-name']);
  const backend = await openBackend({
    app,
    local: args.local,
    dataDir: args['data-dir'],
    region: args.region,
    logger: ctx.logger,
    mustExist: access === 'existing',
  });
  ctx.logger.debug({ backend: backend.description }, 'backend opened');
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}
