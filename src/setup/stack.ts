/**
 * What `ecs-secrets setup` does: creates the application's CloudFormation stack (cloudformation/ecs-secrets.json:
 * the table, the KMS key and alias, two managed IAM policies), following its events on stderr, and
 * prints what was made as JSON on stdout: the stack, the table ARN, the key, the alias and the IAM
 * policy to attach to each role.
 *
 * - An existing stack is reported, never changed (one still being created is followed to the end).
 * - A stack that fails is reported with the resource that failed and CloudFormation's reason (exit 1).
 * - ARNs and the application name are checked before any AWS call (principals.ts; usage error, exit 2).
 * - The template is printed as it is by `--print-template` (template.ts); local.ts prepares the embedded backend.
 */
import { randomUUID } from 'node:crypto';
import {
  type CloudFormationClient,
  CreateStackCommand,
  DescribeStackEventsCommand,
  type DescribeStackEventsCommandOutput,
  DescribeStacksCommand,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import { AppError, fromAwsError, oneLine } from '../core/errors';
import { keyAlias, stackName, tableName } from '../core/names';
import { VERSION } from '../core/version';
import { type ConfigAccessExamples, type PolicyDocument, configAccessExamples, policyDocuments } from './policies';
import { entityKind, entityName } from './principals';
import { TEMPLATE } from './template';

export interface PrincipalReport {
  arn: string | null;
  /** The stack's managed policy to attach; null for a stack made by the original ecs-secrets. */
  managedPolicyArn: string | null;
  /** The same permissions as a policy document (for put-role-policy, or another account's IAM). */
  policy: PolicyDocument;
}

export interface SetupResult {
  application: string;
  region: string;
  stack: string;
  stackId: string;
  stackStatus: string;
  /** false: the stack already existed and was left as it was. */
  created: boolean;
  /** 'ecs-secrets' for this template, 'original' for a stack made by awslabs/ecs-secrets. */
  template: 'ecs-secrets' | 'original';
  tableName: string;
  tableArn: string;
  keyId: string;
  keyArn: string;
  alias: string;
  createPrincipal: PrincipalReport;
  fetchRole: PrincipalReport;
  /** Example IAM policies for configuration documents, per path prefix (the example: team-a/). */
  configAccess: ConfigAccessExamples;
}

export interface SetupInput {
  app: string;
  createPrincipal: string;
  fetchRole: string;
}

export interface SetupDeps {
  cfn: CloudFormationClient;
  /** One line of progress (stack events, notes) for stderr. */
  progress(line: string): void;
  sleep?: (ms: number) => Promise<void>;
  /** Give up following a stack after this long (it goes on being created; setup again follows it). */
  maxWaitMs?: number;
}

const OK = new Set([
  'CREATE_COMPLETE',
  'UPDATE_COMPLETE',
  'UPDATE_ROLLBACK_COMPLETE',
  'IMPORT_COMPLETE',
  'IMPORT_ROLLBACK_COMPLETE',
]);
const POLL_MS = [250, 500, 1000, 2000, 3000, 5000];
const DEFAULT_MAX_WAIT_MS = 30 * 60 * 1000;

export async function setupStack(input: SetupInput, deps: SetupDeps): Promise<SetupResult> {
  const { app } = input;
  const name = stackName(app);
  const { cfn, progress } = deps;
  const region = await resolveRegion(cfn);

  let stack = await describeStack(cfn, name);
  let created = false;
  if (stack) {
    progress(`stack ${name} already exists in ${region} (${stack.StackStatus}): reporting it, changing nothing`);
  } else {
    progress(`creating stack ${name} in ${region}`);
    try {
      const out = await cfn.send(
        new CreateStackCommand({
          StackName: name,
          TemplateBody: JSON.stringify(TEMPLATE),
          Parameters: [
            { ParameterKey: 'ApplicationName', ParameterValue: app },
            { ParameterKey: 'CreatePrincipalArn', ParameterValue: input.createPrincipal },
            { ParameterKey: 'FetchRoleArn', ParameterValue: input.fetchRole },
          ],
          // Named managed policies (ECS-Secrets-<app>-fetch/-create) need the NAMED_IAM capability.
          Capabilities: ['CAPABILITY_NAMED_IAM'],
          // A failed creation rolls back and deletes what it made, Retain policies included, so that
          // setup can simply be run again once the cause is fixed.
          OnFailure: 'ROLLBACK',
          RetainExceptOnCreate: true,
          // Makes the SDK's own retries of this call idempotent.
          ClientRequestToken: `ecs-secrets-setup-${randomUUID()}`,
          Tags: [
            { Key: 'ecs-secrets:application', Value: app },
            { Key: 'ecs-secrets:version', Value: VERSION },
          ],
        }),
      );
      created = true;
      stack = { StackName: name, StackId: out.StackId, StackStatus: 'CREATE_IN_PROGRESS' } as Stack;
    } catch (err) {
      if ((err as Error).name !== 'AlreadyExistsException') throw cfnError(err, `creating stack ${name}`);
      // Another setup got there first: follow and report that one.
      stack = await describeStack(cfn, name);
      if (!stack)
        throw new AppError(
          'conflict',
          `stack ${name} was being created by someone else and is gone again: run setup again`,
        );
      progress(`stack ${name} is being created by another setup: following it, changing nothing`);
    }
  }

  const stackId = stack.StackId as string;
  const status = stack.StackStatus as string;
  if (status === 'REVIEW_IN_PROGRESS')
    throw new AppError(
      'not_set_up',
      `stack ${name} exists but holds nothing yet (REVIEW_IN_PROGRESS: a change set was created but never executed); execute or delete it, then run setup again`,
    );
  if (status === 'DELETE_IN_PROGRESS')
    throw new AppError(
      'not_set_up',
      `stack ${name} is being deleted; wait for the deletion to finish, then run setup again`,
    );

  const events: StackEvent[] = [];
  if (status.endsWith('_IN_PROGRESS')) {
    stack = await follow(cfn, stackId, created, events, deps);
  }
  const final = stack.StackStatus as string;
  if (!OK.has(final)) {
    if (!created && events.length === 0) events.push(...(await recentEvents(cfn, stackId)));
    throw stackFailed(name, region, final, stack.StackStatusReason, events);
  }
  if (created) progress(`stack ${name}: ${final}`);
  return report(app, region, stack, created, input, progress);
}

/** Poll the stack and print its new events until it leaves *_IN_PROGRESS. */
async function follow(
  cfn: CloudFormationClient,
  stackId: string,
  fresh: boolean,
  events: StackEvent[],
  deps: SetupDeps,
): Promise<Stack> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.now() + (deps.maxWaitMs ?? DEFAULT_MAX_WAIT_MS);
  const seen = new Set<string>();
  if (!fresh) {
    // Joining a stack someone else is creating: its events so far are shown once, as they stand.
    for (const e of await recentEvents(cfn, stackId)) {
      seen.add(e.EventId as string);
      events.push(e);
      deps.progress(formatEvent(e));
    }
  }
  for (let i = 0; ; i++) {
    // Status first, then events: so every event up to a final status is printed before we stop.
    const stack = await describeStack(cfn, stackId);
    if (!stack) throw new AppError('not_set_up', `stack ${stackId} disappeared while being created`);
    for (const e of await newEvents(cfn, stackId, seen)) {
      events.push(e);
      deps.progress(formatEvent(e));
    }
    if (!(stack.StackStatus ?? '').endsWith('_IN_PROGRESS')) return stack;
    if (Date.now() > deadline)
      throw new AppError(
        'unavailable',
        `stack ${stack.StackName} is still ${stack.StackStatus} after ${Math.round((deps.maxWaitMs ?? DEFAULT_MAX_WAIT_MS) / 60000)} minutes; CloudFormation goes on with it: run setup again to follow it`,
      );
    await sleep(POLL_MS[Math.min(i, POLL_MS.length - 1)]);
  }
}

/** Events not seen yet, oldest first (the API pages newest first). */
async function newEvents(cfn: CloudFormationClient, stackId: string, seen: Set<string>): Promise<StackEvent[]> {
  const fresh: StackEvent[] = [];
  let token: string | undefined;
  pages: do {
    const out = await describeEvents(cfn, stackId, token);
    for (const e of out.StackEvents ?? []) {
      if (seen.has(e.EventId as string)) break pages;
      fresh.push(e);
    }
    token = out.NextToken;
  } while (token);
  fresh.reverse();
  for (const e of fresh) seen.add(e.EventId as string);
  return fresh;
}

/** The latest page of events, oldest first. */
async function recentEvents(cfn: CloudFormationClient, stackId: string): Promise<StackEvent[]> {
  const out = await describeEvents(cfn, stackId);
  return (out.StackEvents ?? []).reverse();
}

function formatEvent(e: StackEvent): string {
  const time = (e.Timestamp instanceof Date ? e.Timestamp.toISOString() : String(e.Timestamp ?? '')).replace(
    /\.\d{3}Z$/,
    'Z',
  );
  const reason = e.ResourceStatusReason ? `  ${oneLine(e.ResourceStatusReason)}` : '';
  return `${time}  ${String(e.ResourceStatus).padEnd(20)}  ${e.LogicalResourceId} (${e.ResourceType})${reason}`;
}

/**
 * The error for a stack that did not come out right: the resource that failed first and why, from
 * the events of its last operation, and what to do next.
 */
function stackFailed(
  name: string,
  region: string,
  status: string,
  statusReason: string | undefined,
  events: StackEvent[],
): AppError {
  // `events` are oldest first; look at those of the last operation only.
  const chrono = events;
  let start = 0;
  chrono.forEach((e, i) => {
    if (e.ResourceType === 'AWS::CloudFormation::Stack' && e.ResourceStatusReason === 'User Initiated') start = i;
  });
  const cause = chrono
    .slice(start)
    .find(
      (e) =>
        e.ResourceType !== 'AWS::CloudFormation::Stack' &&
        /_FAILED$/.test(e.ResourceStatus ?? '') &&
        !/cancelled/i.test(e.ResourceStatusReason ?? ''),
    );
  const what = cause
    ? `resource ${cause.LogicalResourceId} (${cause.ResourceType}) ${cause.ResourceStatus}: ${cause.ResourceStatusReason ?? 'no reason given'}`
    : `${status}${statusReason ? `: ${statusReason}` : ''}`;
  // Deleting is only advised where a creation failed (nothing is left in the stack to lose).
  const retry = /^(ROLLBACK_COMPLETE|ROLLBACK_FAILED|CREATE_FAILED)$/.test(status)
    ? `; fix the cause, delete the stack (aws cloudformation delete-stack --stack-name ${name} --region ${region}) and run setup again`
    : status === 'UPDATE_ROLLBACK_FAILED'
      ? `; fix the cause, then: aws cloudformation continue-update-rollback --stack-name ${name} --region ${region}`
      : status === 'DELETE_FAILED'
        ? '; its deletion failed part way: settle that in the CloudFormation console before using or deleting it'
        : status === 'DELETE_COMPLETE'
          ? '; fix the cause and run setup again'
          : '';
  return new AppError('not_set_up', oneLine(`stack ${name} failed (${status}): ${what}${retry}`));
}

function report(
  app: string,
  region: string,
  stack: Stack,
  created: boolean,
  input: SetupInput,
  progress: (l: string) => void,
): SetupResult {
  const name = stack.StackName as string;
  const outputs = Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
  const params = Object.fromEntries((stack.Parameters ?? []).map((p) => [p.ParameterKey, p.ParameterValue]));
  const tableArn = outputs.secretsDynamoTable;
  const keyId = outputs.kmsKey;
  if (!tableArn || !keyId)
    throw new AppError(
      'not_set_up',
      `stack ${name} has no secretsDynamoTable and kmsKey outputs: it was not made by ecs-secrets setup; use another application name`,
    );
  const ours = outputs.kmsKeyArn !== undefined;
  // arn:<partition>:dynamodb:<region>:<account>:table/<name>
  const [, partition = 'aws', , arnRegion = region, account = ''] = tableArn.split(':');
  const keyArn =
    outputs.kmsKeyArn ??
    (keyId.startsWith('arn:') ? keyId : `arn:${partition}:kms:${arnRegion}:${account}:key/${keyId}`);
  const table = tableArn.slice(tableArn.indexOf(':table/') + ':table/'.length);
  if (table !== tableName(app))
    progress(
      `warning: stack ${name} holds table ${table}, but ecs-secrets uses ${tableName(app)} for application ${app}`,
    );
  const policies = policyDocuments(app, tableArn, keyArn);
  const createArn = params.CreatePrincipalArn ?? params.ECSSecretsIAMPrincipalForCreatingSecrets ?? null;
  const fetchArn = params.FetchRoleArn ?? params.ECSSecretsIAMRoleArn ?? null;
  if (!created) {
    if (createArn !== null && createArn !== input.createPrincipal)
      progress(
        `note: the existing stack's key policy names create principal ${createArn}, not ${input.createPrincipal}; setup changed nothing`,
      );
    if (fetchArn !== null && fetchArn !== input.fetchRole)
      progress(
        `note: the existing stack's key policy names fetch role ${fetchArn}, not ${input.fetchRole}; setup changed nothing`,
      );
  }
  const result: SetupResult = {
    application: app,
    region,
    stack: name,
    stackId: stack.StackId as string,
    stackStatus: stack.StackStatus as string,
    created,
    template: ours ? 'ecs-secrets' : 'original',
    tableName: table,
    tableArn,
    keyId,
    keyArn,
    alias: outputs.kmsKeyAlias ?? keyAlias(app),
    createPrincipal: { arn: createArn, managedPolicyArn: outputs.createPolicyArn ?? null, policy: policies.create },
    fetchRole: { arn: fetchArn, managedPolicyArn: outputs.fetchPolicyArn ?? null, policy: policies.fetch },
    configAccess: configAccessExamples(app, tableArn),
  };
  for (const [who, p] of [
    ['create principal', result.createPrincipal],
    ['fetch role', result.fetchRole],
  ] as const) {
    if (!p.arn) continue;
    const kind = entityKind(p.arn);
    progress(
      p.managedPolicyArn
        ? `next: attach the ${who}'s policy: aws iam attach-${kind}-policy --${kind}-name ${entityName(p.arn)} --policy-arn ${p.managedPolicyArn}`
        : `next: give the ${who} the policy in the output's ${who === 'fetch role' ? 'fetchRole' : 'createPrincipal'}.policy: aws iam put-${kind}-policy --${kind}-name ${entityName(p.arn)} --policy-name ${name}-${who === 'fetch role' ? 'fetch' : 'create'} --policy-document file://policy.json`,
    );
  }
  return result;
}

/** The client's region (backends/aws.ts turns a missing one into a usage error). */
function resolveRegion(cfn: CloudFormationClient): Promise<string> {
  return cfn.config.region();
}

async function describeStack(cfn: CloudFormationClient, nameOrId: string): Promise<Stack | undefined> {
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: nameOrId }));
    return out.Stacks?.[0];
  } catch (err) {
    const e = err as Error;
    if (e.name === 'ValidationError' && /does not exist/.test(e.message)) return undefined;
    throw cfnError(err, `describing stack ${nameOrId}`);
  }
}

async function describeEvents(
  cfn: CloudFormationClient,
  stackId: string,
  token?: string,
): Promise<DescribeStackEventsCommandOutput> {
  try {
    return await cfn.send(new DescribeStackEventsCommand({ StackName: stackId, NextToken: token }));
  } catch (err) {
    throw cfnError(err, `reading the events of stack ${stackId}`);
  }
}

/** CloudFormation's own refusals (ValidationError, InsufficientCapabilities...) are runtime errors with its message. */
function cfnError(err: unknown, what: string): AppError {
  const e = err as Error & { $metadata?: { httpStatusCode?: number } };
  const mapped = fromAwsError(err, what);
  if (mapped.kind !== 'internal' || !e?.$metadata) return mapped;
  return new AppError('not_set_up', `CloudFormation refused ${what}: ${e.name}: ${oneLine(e.message)}`, { cause: err });
}
