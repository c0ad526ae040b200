/**
 * The principals `setup` names in the key policy: ARNs checked before any AWS call (usage error,
 * exit 2), common mistakes with a specific hint, and the parts of an ARN the next-step hints use.
 */
import { AppError } from '../core/errors';

// arn:<partition>:iam::<account>:role|user/<path/>name — IAM paths are printable ASCII, names [\w+=,.@-]{1,64}.
const IAM_ARN =
  /^arn:(aws(?:-[a-z]+)*):iam::([0-9]{12}):(role|user)\/((?:[\x21-\x2e\x30-\x7e]+\/)*)([\w+=,.@-]{1,64})$/;

const FLAG_HELP = {
  'create-principal': {
    what: 'the IAM role or user that creates and revokes secrets',
    example: 'arn:aws:iam::123456789012:role/SecretsAdmin',
    kinds: ['role', 'user'],
  },
  'fetch-role': {
    what: 'the IAM role (task role) of the tasks that read secrets',
    example: 'arn:aws:iam::123456789012:role/MyApplicationRole',
    kinds: ['role'],
  },
} as const;

export type PrincipalFlag = keyof typeof FLAG_HELP;

/**
 * Check a principal ARN the way the key policy needs it: a role (or, for the create principal, a
 * user) in IAM. Common mistakes get a specific hint. Throws a usage error naming the flag.
 */
export function validatePrincipalArn(value: unknown, flag: PrincipalFlag): string {
  const help = FLAG_HELP[flag];
  const expected = `pass the ARN of ${help.what}, e.g. ${help.example}`;
  if (typeof value !== 'string' || value.trim() === '') throw new AppError('usage', `missing --${flag}: ${expected}`);
  const shown = JSON.stringify(value.length > 100 ? `${value.slice(0, 97)}...` : value);
  const bad = (why: string) => new AppError('usage', `invalid --${flag} ${shown}: ${why}`);
  if (!value.startsWith('arn:')) throw bad(`not an ARN; ${expected}`);
  const assumed = /^arn:aws[a-z-]*:sts::([0-9]{12}):assumed-role\/([^/]+)\//.exec(value);
  if (assumed)
    throw bad(
      `this is a session (assumed-role) ARN; pass the role's own ARN, arn:aws:iam::${assumed[1]}:role/${assumed[2]} (with its path, if it has one)`,
    );
  if (/^arn:[^:]*:iam::[^:]*:instance-profile\//.test(value))
    throw bad(`this is an instance profile; pass the ARN of its role`);
  if (/^arn:[^:]*:iam::[^:]*:group\//.test(value))
    throw bad(`IAM groups cannot be principals in a key policy; ${expected}`);
  const m = IAM_ARN.exec(value);
  if (!m) throw bad(`not an IAM ${help.kinds.join(' or ')} ARN; ${expected}`);
  if (!(help.kinds as readonly string[]).includes(m[3])) throw bad(`a ${m[3]} cannot be the fetch role; ${expected}`);
  return value;
}

/** The last part of an IAM ARN: what `aws iam attach-role-policy --role-name` wants. */
export const entityName = (arn: string): string => arn.slice(arn.lastIndexOf('/') + 1);
export const entityKind = (arn: string): 'role' | 'user' => (/:user\//.test(arn) ? 'user' : 'role');
