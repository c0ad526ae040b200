/** Names and their rules (compatible with the original): applications, secrets, serials, AWS resources. */
import { AppError } from './errors';

export const APP_NAME_RULE = /^[A-Za-z][A-Za-z0-9-]{0,63}$/;
/** A secret name's alphabet and length as a pattern source, for the routes that embed it; SECRET_NAME_RULE anchors it. */
export const SECRET_NAME_PATTERN = '[A-Za-z0-9._-]{1,255}';
export const SECRET_NAME_RULE = new RegExp(`^${SECRET_NAME_PATTERN}$`);

/**
 * Items of the table that are no secret: configuration documents (`config/PATH`) and the
 * application's own records (`meta/...`, such as the change record). `/` is no secret-name
 * character, so neither can collide with a secret.
 */
export const CONFIG_NAME_PREFIX = 'config/';
export const META_NAME_PREFIX = 'meta/';
/** The application's own records: no listing, prefix or export ever shows them. */
export const isMetaName = (name: string): boolean => name.startsWith(META_NAME_PREFIX);
/** A secret's item, as listings show them: neither a document nor a record of the application's own. */
export const isSecretItemName = (name: string): boolean => !name.includes('/');

export const stackName = (app: string): string => `ECS-Secrets-${app}`;
export const tableName = (app: string): string => `ECS-Secrets-${app}-Secrets`;
/** "Masker" is the original's spelling; keeping it lets existing stacks work unchanged. */
export const keyAlias = (app: string): string => `alias/ECSSecretsMaskerKey-${app}`;

export function validateAppName(app: unknown): string {
  if (typeof app !== 'string' || app === '')
    throw new AppError(
      'usage',
      'missing application name: pass --application-name or set ECS_SECRETS_APPLICATION_NAME',
    );
  if (!APP_NAME_RULE.test(app))
    throw new AppError(
      'usage',
      `invalid application name ${quote(app)}: it must start with a letter and contain only letters, digits and '-' (at most 64 characters)`,
    );
  return app;
}

export function validateSecretName(name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new AppError('usage', 'missing secret name');
  if (!SECRET_NAME_RULE.test(name) || name === '.' || name === '..')
    throw new AppError(
      'usage',
      `invalid secret name ${quote(name)}: use 1 to 255 characters from A-Z a-z 0-9 . _ - (dots make namespaces, e.g. com.foo.app1.mysql)`,
    );
  return name;
}

/** Serials are positive integers written in plain decimal: no signs, exponents, fractions or leading zeros. */
export function parseSerial(value: unknown): number {
  const s = typeof value === 'number' ? String(value) : value;
  if (typeof s !== 'string' || !/^[1-9][0-9]{0,15}$/.test(s) || !Number.isSafeInteger(Number(s)))
    throw new AppError(
      'usage',
      `invalid serial ${quote(String(value))}: it must be a positive whole number (1, 2, 3, ...)`,
    );
  return Number(s);
}

/** Quote user input for an error message, shortened so a 300-character name stays one readable line. */
function quote(s: string): string {
  const short = s.length > 80 ? `${s.slice(0, 77)}...` : s;
  return JSON.stringify(short);
}
