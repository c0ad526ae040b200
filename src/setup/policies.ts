/**
 * The IAM policies `setup` reports: each principal's, from the template's managed policies, and
 * the example policies for configuration documents under one path prefix.
 */
import { AppError } from '../core/errors';
import { TEMPLATE } from './template';

export interface PolicyDocument {
  Version: string;
  Statement: Array<Record<string, unknown>>;
}

/**
 * The IAM policy each principal needs, taken from the template's managed policies (one source of
 * truth) with the table ARN, key ARN and application name filled in. Used for stacks of either
 * origin: an original ecs-secrets stack has no managed policies, so these are what to attach there.
 */
export function policyDocuments(
  app: string,
  tableArn: string,
  keyArn: string,
): { fetch: PolicyDocument; create: PolicyDocument } {
  const resources = (TEMPLATE as { Resources: Record<string, { Properties: { PolicyDocument: unknown } }> }).Resources;
  const fill = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(fill);
    if (typeof value !== 'object' || value === null) return value;
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === 'Ref' && o.Ref === 'ApplicationName') return app;
    if (keys.length === 1 && keys[0] === 'Fn::GetAtt') {
      const [res, attr] = o['Fn::GetAtt'] as [string, string];
      if (res === 'ECSSecretsTable' && attr === 'Arn') return tableArn;
      if (res === 'ECSSecretsMasterKey' && attr === 'Arn') return keyArn;
    }
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::')))
      throw new AppError(
        'internal',
        `the template's IAM policies use ${JSON.stringify(o)}, which setup cannot fill in`,
      );
    return Object.fromEntries(keys.map((k) => [k, fill(o[k])]));
  };
  return {
    fetch: fill(resources.ECSSecretsFetchPolicy.Properties.PolicyDocument) as PolicyDocument,
    create: fill(resources.ECSSecretsCreatePolicy.Properties.PolicyDocument) as PolicyDocument,
  };
}

export interface ConfigAccessExamples {
  prefix: string;
  /** The example role these statements are for (replace with yours). */
  role: string;
  /** "reads team-a's configuration": an IAM policy for the role: its items, secret values as ENC[...] (config build). */
  readsConfiguration: PolicyDocument;
  /**
   * "also reads its secrets": a statement to add to the key policy (the key policy is the one list
   * of who may use the key), KMS Decrypt of data keys whose context names a path under the prefix
   * (config build --show-secrets).
   */
  readsConfigurationSecrets: Record<string, unknown>;
}

/**
 * The seed's access model for configuration documents, for one path prefix: reading a path's
 * items is `dynamodb:LeadingKeys` on `config/PREFIX*` (IAM); reading its secrets ("read-secrets")
 * is KMS Decrypt conditioned on `kms:EncryptionContext:ecs-secrets:config` (key policy). The fetch
 * role and create principal need nothing more: their key-policy statements cover every context of
 * the application, configuration documents included.
 */
export function configAccessExamples(app: string, tableArn: string, prefix = 'team-a/'): ConfigAccessExamples {
  const account = tableArn.split(':')[4] || '123456789012';
  const role = `arn:aws:iam::${account}:role/TeamA`;
  return {
    prefix,
    role,
    readsConfiguration: {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ReadConfigurationUnderPrefix',
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:Query'],
          Resource: tableArn,
          Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`config/${prefix}*`] } },
        },
      ],
    },
    readsConfigurationSecrets: {
      Sid: 'TeamAReadsItsConfigurationSecrets',
      Effect: 'Allow',
      Principal: { AWS: role },
      Action: 'kms:Decrypt',
      Resource: '*',
      Condition: {
        StringEquals: { 'kms:EncryptionContext:ecs-secrets:application': app },
        StringLike: { 'kms:EncryptionContext:ecs-secrets:config': `${prefix}*` },
      },
    },
  };
}
