/**
 * An in-process CloudFormation stand-in speaking the real query protocol (form-encoded POSTs in,
 * XML out), so the real SDK v3 CloudFormationClient can be pointed at it (endpoint /
 * AWS_ENDPOINT_URL_CLOUDFORMATION). It implements CreateStack, DescribeStacks, DescribeStackEvents
 * and DeleteStack for JSON templates, and *materialises* what it creates: tables in the DynamoDB
 * stand-in (through the real DynamoDB SDK client), keys and aliases in the KMS stand-in.
 *
 * What it checks, like CloudFormation does: template structure, resource types and properties it
 * knows, parameter constraints (AllowedPattern, AllowedValues), capabilities for IAM resources,
 * references to unknown parameters/resources/attributes, key-policy lockout and principal syntax,
 * IAM policy document syntax. What it resolves: Ref (parameters, resources, pseudo parameters),
 * Fn::GetAtt, Fn::Sub, Fn::Join. Anything else is rejected as a template error, so a template that
 * starts to use more is caught here rather than in an AWS account.
 *
 * Key policies become real in tests: given `principals` (principal ARN -> access key id), a created
 * key's policy is translated into KMS stand-in permissions for those access keys (allowed actions,
 * and an EncryptionContext condition), so "the fetch role may not GenerateDataKey" is enforced.
 *
 * Resources are created one at a time in dependency order, with the stack events CloudFormation
 * writes. Tests can make a resource fail (CREATE_FAILED with a reason, then a rollback that honours
 * DeletionPolicy and RetainExceptOnCreate) and can hold creation before a resource to watch a
 * stack in progress.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KmsError, type KmsStandIn, StandInServer, readBody } from './kms';

export const CFN_ACTIONS = ['CreateStack', 'DescribeStacks', 'DescribeStackEvents', 'DeleteStack'] as const;
const API_VERSION = '2010-05-15';
const XMLNS = `http://cloudformation.amazonaws.com/doc/${API_VERSION}/`;
const EVENTS_PAGE_SIZE = 100;

// ---------------------------------------------------------------------------------------------
// Errors

/** A CloudFormation error response: `code` is what the SDK turns into the error's name. */
export class CfnError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = code;
  }
}

const templateError = (msg: string) => new CfnError('ValidationError', `Template format error: ${msg}`);
/** Thrown inside a resource handler: the resource's CREATE_FAILED reason. */
class ResourceFailure extends Error {}

// ---------------------------------------------------------------------------------------------
// Templates

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

interface ParameterDecl {
  Type: string;
  Default?: string;
  AllowedPattern?: string;
  AllowedValues?: string[];
  ConstraintDescription?: string;
  NoEcho?: boolean | string;
}

interface ResourceDecl {
  Type: string;
  Properties: JsonObject;
  DependsOn: string[];
  DeletionPolicy: 'Delete' | 'Retain' | 'RetainExceptOnCreate' | 'Snapshot';
}

export interface Template {
  parameters: Record<string, ParameterDecl>;
  resources: Map<string, ResourceDecl>; // template order
  outputs: Record<string, { Value: Json; Description?: string }>;
}

const TOP_LEVEL = new Set([
  'AWSTemplateFormatVersion',
  'Description',
  'Metadata',
  'Parameters',
  'Mappings',
  'Conditions',
  'Transform',
  'Resources',
  'Outputs',
  'Rules',
]);
const RESOURCE_ATTRIBUTES = new Set([
  'Type',
  'Properties',
  'DependsOn',
  'DeletionPolicy',
  'UpdateReplacePolicy',
  'Metadata',
  'Condition',
  'CreationPolicy',
  'UpdatePolicy',
]);
const PSEUDO = new Set([
  'AWS::AccountId',
  'AWS::Region',
  'AWS::StackName',
  'AWS::StackId',
  'AWS::Partition',
  'AWS::URLSuffix',
  'AWS::NoValue',
  'AWS::NotificationARNs',
]);
const SUPPORTED_FUNCTIONS = new Set(['Ref', 'Fn::GetAtt', 'Fn::Sub', 'Fn::Join']);

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse and check a template (JSON only), as CreateStack does before creating anything. */
export function parseTemplate(body: string): Template {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    // CloudFormation would try YAML next; this stand-in only reads JSON templates.
    throw templateError('JSON not well-formed. (the stand-in reads JSON templates only)');
  }
  if (!isObject(raw)) throw templateError('the template is not a JSON object');
  const unknownTop = Object.keys(raw).filter((k) => !TOP_LEVEL.has(k));
  if (unknownTop.length) throw templateError(`Invalid template property or properties [${unknownTop.join(', ')}]`);
  if (raw.AWSTemplateFormatVersion !== undefined && raw.AWSTemplateFormatVersion !== '2010-09-09')
    throw templateError(`Unsupported template format version ${String(raw.AWSTemplateFormatVersion)}`);
  for (const k of ['Transform', 'Conditions', 'Mappings', 'Rules'])
    if (raw[k] !== undefined) throw templateError(`${k} is not supported by the stand-in`);

  const parameters: Record<string, ParameterDecl> = {};
  for (const [name, p] of Object.entries(isObject(raw.Parameters) ? raw.Parameters : {})) {
    if (!isObject(p) || typeof p.Type !== 'string') throw templateError(`Parameter ${name} must have a Type`);
    if (p.Type !== 'String') throw templateError(`Parameter ${name}: the stand-in supports Type String only`);
    parameters[name] = p as unknown as ParameterDecl;
  }

  if (!isObject(raw.Resources) || Object.keys(raw.Resources).length === 0)
    throw templateError('At least one Resources member must be defined.');
  const resources = new Map<string, ResourceDecl>();
  for (const [id, r] of Object.entries(raw.Resources)) {
    if (!/^[A-Za-z0-9]+$/.test(id)) throw templateError(`Resource name ${id} is non alphanumeric.`);
    if (!isObject(r) || typeof r.Type !== 'string')
      throw templateError(`[/Resources/${id}] Every Resources object must contain a Type member.`);
    const bad = Object.keys(r).filter((k) => !RESOURCE_ATTRIBUTES.has(k));
    if (bad.length) throw templateError(`Invalid template resource property '${bad[0]}'`);
    if (r.Condition !== undefined) throw templateError('Conditions are not supported by the stand-in');
    const policy = r.DeletionPolicy ?? 'Delete';
    if (!['Delete', 'Retain', 'RetainExceptOnCreate', 'Snapshot'].includes(policy as string))
      throw templateError(`Unrecognized DeletionPolicy ${String(policy)} for resource ${id}`);
    if (
      r.UpdateReplacePolicy !== undefined &&
      !['Delete', 'Retain', 'Snapshot'].includes(r.UpdateReplacePolicy as string)
    )
      throw templateError(`Unrecognized UpdateReplacePolicy ${String(r.UpdateReplacePolicy)} for resource ${id}`);
    if (policy === 'Snapshot') throw templateError(`DeletionPolicy Snapshot is not supported for ${r.Type}`);
    const dependsOn = r.DependsOn === undefined ? [] : Array.isArray(r.DependsOn) ? r.DependsOn : [r.DependsOn];
    if (r.Properties !== undefined && !isObject(r.Properties))
      throw templateError(`[/Resources/${id}/Properties] must be an object`);
    resources.set(id, {
      Type: r.Type,
      Properties: (r.Properties as JsonObject | undefined) ?? {},
      DependsOn: dependsOn.map(String),
      DeletionPolicy: policy as ResourceDecl['DeletionPolicy'],
    });
  }
  const unknownTypes = [...resources.values()].map((r) => r.Type).filter((t) => !(t in PROVIDERS));
  if (unknownTypes.length)
    throw templateError(`Unrecognized resource types: [${[...new Set(unknownTypes)].join(', ')}]`);

  const outputs: Template['outputs'] = {};
  for (const [name, o] of Object.entries(isObject(raw.Outputs) ? raw.Outputs : {})) {
    if (!isObject(o) || o.Value === undefined) throw templateError(`Output ${name} is malformed: it must have a Value`);
    outputs[name] = { Value: o.Value, Description: typeof o.Description === 'string' ? o.Description : undefined };
  }

  const template: Template = { parameters, resources, outputs };
  // Every reference must resolve: checked now, like CloudFormation's template validation.
  for (const [id, r] of resources) {
    for (const dep of r.DependsOn)
      if (!resources.has(dep))
        throw templateError(`Unresolved resource dependencies [${dep}] in the Resources block of the template`);
    checkRefs(template, r.Properties, `/Resources/${id}/Properties`);
  }
  for (const [name, o] of Object.entries(outputs)) checkRefs(template, o.Value, `/Outputs/${name}/Value`);
  order(template); // rejects cycles
  return template;
}

/** The references (resources and attributes) in a value; throws on unknown names and functions. */
function checkRefs(t: Template, value: Json, where: string): void {
  walkRefs(value, where, (kind, name, attr) => {
    if (kind === 'ref') {
      if (PSEUDO.has(name) || name in t.parameters) return;
      if (!t.resources.has(name))
        throw templateError(`Unresolved resource dependencies [${name}] in the Resources block of the template`);
      return;
    }
    const r = t.resources.get(name);
    if (!r) throw templateError(`Template error: instance of Fn::GetAtt references undefined resource ${name}`);
    if (!PROVIDERS[r.Type].attributes.includes(attr ?? ''))
      throw templateError(`Template error: resource ${name} does not support attribute type ${attr} in Fn::GetAtt`);
  });
}

/** Calls `visit` for each Ref / GetAtt (also those inside Fn::Sub strings). */
function walkRefs(
  value: Json,
  where: string,
  visit: (kind: 'ref' | 'getatt', name: string, attr?: string) => void,
): void {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) walkRefs(v, `${where}/${i}`, visit);
    return;
  }
  if (!isObject(value)) return;
  const keys = Object.keys(value);
  const fn = keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::')) ? keys[0] : undefined;
  if (!fn) {
    for (const k of keys) walkRefs(value[k], `${where}/${k}`, visit);
    return;
  }
  if (!SUPPORTED_FUNCTIONS.has(fn)) throw templateError(`[${where}] the stand-in does not support ${fn}`);
  const arg = value[fn];
  if (fn === 'Ref') {
    if (typeof arg !== 'string') throw templateError(`[${where}] Ref must be a string`);
    return visit('ref', arg);
  }
  if (fn === 'Fn::GetAtt') {
    const [name, attr] = getAttArgs(arg, where);
    return visit('getatt', name, attr);
  }
  if (fn === 'Fn::Join') {
    if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== 'string')
      throw templateError(`[${where}] Fn::Join requires [delimiter, [values]]`);
    return walkRefs(arg[1], `${where}/Fn::Join`, visit);
  }
  // Fn::Sub
  const [text, vars] = subArgs(arg, where);
  for (const v of Object.values(vars)) walkRefs(v, `${where}/Fn::Sub`, visit);
  for (const name of subVariables(text)) {
    if (name in vars) continue;
    const dot = name.indexOf('.');
    if (dot > 0 && !name.startsWith('AWS::')) visit('getatt', name.slice(0, dot), name.slice(dot + 1));
    else visit('ref', name);
  }
}

function getAttArgs(arg: Json, where: string): [string, string] {
  if (typeof arg === 'string' && arg.includes('.'))
    return [arg.slice(0, arg.indexOf('.')), arg.slice(arg.indexOf('.') + 1)];
  if (Array.isArray(arg) && arg.length === 2 && typeof arg[0] === 'string' && typeof arg[1] === 'string')
    return [arg[0], arg[1]];
  throw templateError(`[${where}] Fn::GetAtt requires [resource, attribute] or "resource.attribute"`);
}

function subArgs(arg: Json, where: string): [string, JsonObject] {
  if (typeof arg === 'string') return [arg, {}];
  if (Array.isArray(arg) && arg.length === 2 && typeof arg[0] === 'string' && isObject(arg[1])) return [arg[0], arg[1]];
  throw templateError(`[${where}] Fn::Sub requires a string or [string, {variables}]`);
}

/** `${Name}` and `${Res.Attr}` in a Fn::Sub string; `${!Literal}` is not a variable. */
function subVariables(text: string): string[] {
  return [...text.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]).filter((n) => !n.startsWith('!'));
}

/** Resource creation order: dependencies first, otherwise template order. */
function order(t: Template): string[] {
  const deps = new Map<string, Set<string>>();
  for (const [id, r] of t.resources) {
    const d = new Set<string>(r.DependsOn);
    walkRefs(r.Properties, id, (_kind, name) => {
      if (t.resources.has(name)) d.add(name);
    });
    deps.set(id, d);
  }
  const done: string[] = [];
  const visiting = new Set<string>();
  const visit = (id: string): void => {
    if (done.includes(id)) return;
    if (visiting.has(id)) throw templateError(`Circular dependency between resources: [${[...visiting].join(', ')}]`);
    visiting.add(id);
    for (const d of deps.get(id) ?? []) visit(d);
    visiting.delete(id);
    done.push(id);
  };
  for (const id of t.resources.keys()) visit(id);
  return done;
}

// ---------------------------------------------------------------------------------------------
// Resolution of intrinsic functions

interface Created {
  logicalId: string;
  type: string;
  physicalId: string;
  /** What Ref returns (the physical id for most types, the ARN for a managed policy). */
  ref: string;
  attributes: Record<string, string>;
  /** Resolved properties, for tests to inspect. */
  properties: JsonObject;
  deletionPolicy: ResourceDecl['DeletionPolicy'];
}

interface Scope {
  stack: Stack;
  created: Map<string, Created>;
}

function pseudo(name: string, s: Scope): string {
  const { stack } = s;
  switch (name) {
    case 'AWS::AccountId':
      return stack.accountId;
    case 'AWS::Region':
      return stack.region;
    case 'AWS::StackName':
      return stack.name;
    case 'AWS::StackId':
      return stack.id;
    case 'AWS::Partition':
      return 'aws';
    case 'AWS::URLSuffix':
      return 'amazonaws.com';
    default:
      throw new ResourceFailure(`the stand-in cannot resolve ${name} here`);
  }
}

function resolveRef(name: string, s: Scope): string {
  if (PSEUDO.has(name)) return pseudo(name, s);
  if (name in s.stack.parameters) return s.stack.parameters[name];
  const r = s.created.get(name);
  if (!r) throw new ResourceFailure(`reference to ${name}, which does not exist yet`);
  return r.ref;
}

function resolveGetAtt(name: string, attr: string, s: Scope): string {
  const r = s.created.get(name);
  const v = r?.attributes[attr];
  if (v === undefined) throw new ResourceFailure(`Fn::GetAtt ${name}.${attr} is not available`);
  return v;
}

/** Resolve intrinsic functions in a value (AWS::NoValue removes the key or list element). */
export function resolve(value: Json, s: Scope): Json {
  const NO_VALUE = Symbol('NoValue');
  const go = (v: Json): Json | typeof NO_VALUE => {
    if (Array.isArray(v)) return v.map(go).filter((x): x is Json => x !== NO_VALUE);
    if (!isObject(v)) return v;
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === 'Ref') {
      if (v.Ref === 'AWS::NoValue') return NO_VALUE;
      return resolveRef(v.Ref as string, s);
    }
    if (keys.length === 1 && keys[0] === 'Fn::GetAtt') {
      const [name, attr] = getAttArgs(v['Fn::GetAtt'], 'Fn::GetAtt');
      return resolveGetAtt(name, attr, s);
    }
    if (keys.length === 1 && keys[0] === 'Fn::Join') {
      const [delim, list] = v['Fn::Join'] as [string, Json];
      const items = go(list);
      if (!Array.isArray(items) || items.some((i) => typeof i !== 'string'))
        throw new ResourceFailure('Fn::Join needs a list of strings');
      return items.join(delim);
    }
    if (keys.length === 1 && keys[0] === 'Fn::Sub') {
      const [text, vars] = subArgs(v['Fn::Sub'], 'Fn::Sub');
      const values: Record<string, string> = {};
      for (const [k, val] of Object.entries(vars)) {
        const r = go(val);
        if (typeof r !== 'string') throw new ResourceFailure(`Fn::Sub variable ${k} must resolve to a string`);
        values[k] = r;
      }
      return text.replace(/\$\{([^}]*)\}/g, (_m, name: string) => {
        if (name.startsWith('!')) return `\${${name.slice(1)}}`;
        if (name in values) return values[name];
        const dot = name.indexOf('.');
        if (dot > 0 && !name.startsWith('AWS::')) return resolveGetAtt(name.slice(0, dot), name.slice(dot + 1), s);
        return resolveRef(name, s);
      });
    }
    const out: JsonObject = {};
    for (const k of keys) {
      const r = go(v[k]);
      if (r !== NO_VALUE) out[k] = r;
    }
    return out;
  };
  const r = go(value);
  return r === NO_VALUE ? null : r;
}

// ---------------------------------------------------------------------------------------------
// Resource providers

interface ProviderContext {
  cfn: CloudFormationStandIn;
  stack: Stack;
  logicalId: string;
}

interface Provider {
  properties: string[];
  required: string[];
  attributes: string[];
  /** Capability needed for this type (IAM resources), given its properties. */
  capability?: (props: JsonObject) => string;
  create(
    props: JsonObject,
    ctx: ProviderContext,
  ): Promise<Omit<Created, 'logicalId' | 'type' | 'properties' | 'deletionPolicy'>>;
  delete(r: Created, ctx: ProviderContext): Promise<void>;
}

const str = (props: JsonObject, key: string): string | undefined => {
  const v = props[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string')
    throw new ResourceFailure(`Properties validation failed: #/${key}: expected type: String, found: ${typeof v}`);
  return v;
};
const bool = (props: JsonObject, key: string): boolean | undefined => {
  const v = props[key];
  if (v === undefined) return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new ResourceFailure(`Properties validation failed: #/${key}: expected type: Boolean, found: ${typeof v}`);
};
const generatedName = (ctx: ProviderContext, max = 255) =>
  `${ctx.stack.name}-${ctx.logicalId}-${randomUUID().replace(/-/g, '').slice(0, 12).toUpperCase()}`.slice(0, max);

const PROVIDERS: Record<string, Provider> = {
  'AWS::DynamoDB::Table': {
    properties: [
      'AttributeDefinitions',
      'BillingMode',
      'ContributorInsightsSpecification',
      'DeletionProtectionEnabled',
      'GlobalSecondaryIndexes',
      'ImportSourceSpecification',
      'KeySchema',
      'KinesisStreamSpecification',
      'LocalSecondaryIndexes',
      'OnDemandThroughput',
      'PointInTimeRecoverySpecification',
      'ProvisionedThroughput',
      'ResourcePolicy',
      'SSESpecification',
      'StreamSpecification',
      'TableClass',
      'TableName',
      'Tags',
      'TimeToLiveSpecification',
      'WarmThroughput',
    ],
    required: ['KeySchema'],
    attributes: ['Arn', 'StreamArn'],
    async create(props, ctx) {
      const name = str(props, 'TableName') ?? generatedName(ctx);
      const pitr = props.PointInTimeRecoverySpecification;
      if (pitr !== undefined && (!isObject(pitr) || bool(pitr, 'PointInTimeRecoveryEnabled') === undefined))
        throw new ResourceFailure(
          'Properties validation failed: #/PointInTimeRecoverySpecification: required key [PointInTimeRecoveryEnabled] not found',
        );
      const sse = props.SSESpecification;
      if (sse !== undefined && (!isObject(sse) || bool(sse, 'SSEEnabled') === undefined))
        throw new ResourceFailure(
          'Properties validation failed: #/SSESpecification: required key [SSEEnabled] not found',
        );
      const throughput = isObject(props.ProvisionedThroughput)
        ? {
            ReadCapacityUnits: Number(props.ProvisionedThroughput.ReadCapacityUnits),
            WriteCapacityUnits: Number(props.ProvisionedThroughput.WriteCapacityUnits),
          }
        : undefined;
      const ddb = ctx.cfn.dynamoClient();
      try {
        await ddb.send(
          new CreateTableCommand({
            TableName: name,
            KeySchema: props.KeySchema as never,
            AttributeDefinitions: props.AttributeDefinitions as never,
            BillingMode: (str(props, 'BillingMode') ?? (throughput ? 'PROVISIONED' : undefined)) as never,
            ProvisionedThroughput: throughput,
          }),
        );
        for (let i = 0; ; i++) {
          const { Table } = await ddb.send(new DescribeTableCommand({ TableName: name }));
          if (Table?.TableStatus === 'ACTIVE') break;
          if (i > 500) throw new ResourceFailure(`table ${name} did not become ACTIVE`);
          await new Promise((r) => setTimeout(r, 10));
        }
      } catch (err) {
        if (err instanceof ResourceFailure) throw err;
        const e = err as Error;
        if (e.name === 'ResourceInUseException')
          throw new ResourceFailure(
            `Resource of type 'AWS::DynamoDB::Table' with identifier '${name}' already exists.`,
          );
        throw new ResourceFailure(`${e.name}: ${e.message}`);
      }
      // The ARN CloudFormation reports, in the stand-in's account (dynalite's own uses 000000000000).
      const arn = `arn:aws:dynamodb:${ctx.stack.region}:${ctx.stack.accountId}:table/${name}`;
      return { physicalId: name, ref: name, attributes: { Arn: arn, StreamArn: `${arn}/stream/none` } };
    },
    async delete(r, ctx) {
      try {
        await ctx.cfn.dynamoClient().send(new DeleteTableCommand({ TableName: r.physicalId }));
      } catch (err) {
        if ((err as Error).name !== 'ResourceNotFoundException') throw err;
      }
    },
  },

  'AWS::KMS::Key': {
    properties: [
      'BypassPolicyLockoutSafetyCheck',
      'Description',
      'Enabled',
      'EnableKeyRotation',
      'KeyPolicy',
      'KeySpec',
      'KeyUsage',
      'MultiRegion',
      'Origin',
      'PendingWindowInDays',
      'RotationPeriodInDays',
      'Tags',
    ],
    required: [],
    attributes: ['Arn', 'KeyId'],
    async create(props, ctx) {
      const { cfn, stack } = ctx;
      const spec = str(props, 'KeySpec') ?? 'SYMMETRIC_DEFAULT';
      const usage = str(props, 'KeyUsage') ?? 'ENCRYPT_DECRYPT';
      if (spec !== 'SYMMETRIC_DEFAULT' || usage !== 'ENCRYPT_DECRYPT')
        throw new ResourceFailure('the stand-in supports symmetric ENCRYPT_DECRYPT keys only');
      bool(props, 'EnableKeyRotation');
      const policy = props.KeyPolicy === undefined ? defaultKeyPolicy(stack.accountId) : props.KeyPolicy;
      if (!isObject(policy))
        throw new ResourceFailure('Properties validation failed: #/KeyPolicy: expected type: JSONObject');
      checkKeyPolicy(policy, stack.accountId, bool(props, 'BypassPolicyLockoutSafetyCheck') === true);
      const meta = cfn.kms.createKey({ description: str(props, 'Description') ?? '', policy: JSON.stringify(policy) });
      const keyId = meta.KeyId as string;
      cfn.applyKeyPolicy(policy);
      return { physicalId: keyId, ref: keyId, attributes: { Arn: meta.Arn as string, KeyId: keyId } };
    },
    async delete(r, ctx) {
      // KMS would schedule deletion (7 to 30 days); in the stand-in the key is gone at once.
      (ctx.cfn.kms.keys as Map<string, unknown>).delete(r.physicalId);
      ctx.cfn.deletedKeys.push(r.physicalId);
    },
  },

  'AWS::KMS::Alias': {
    properties: ['AliasName', 'TargetKeyId'],
    required: ['AliasName', 'TargetKeyId'],
    attributes: [],
    async create(props, ctx) {
      const name = str(props, 'AliasName') as string;
      try {
        ctx.cfn.kms.createAlias(name, str(props, 'TargetKeyId') as string);
      } catch (err) {
        if (err instanceof KmsError)
          throw new ResourceFailure(`${err.message} (Service: Kms, Status Code: 400, Error Code: ${err.type})`);
        throw err;
      }
      return { physicalId: name, ref: name, attributes: {} };
    },
    async delete(r, ctx) {
      (ctx.cfn.kms.aliases as Map<string, string>).delete(r.physicalId);
    },
  },

  'AWS::IAM::ManagedPolicy': {
    properties: ['Description', 'Groups', 'ManagedPolicyName', 'Path', 'PolicyDocument', 'Roles', 'Users'],
    required: ['PolicyDocument'],
    attributes: [
      'PolicyArn',
      'AttachmentCount',
      'CreateDate',
      'DefaultVersionId',
      'IsAttachable',
      'PolicyId',
      'UpdateDate',
    ],
    capability: (props) => (props.ManagedPolicyName === undefined ? 'CAPABILITY_IAM' : 'CAPABILITY_NAMED_IAM'),
    async create(props, ctx) {
      const { cfn, stack } = ctx;
      const name = str(props, 'ManagedPolicyName') ?? generatedName(ctx, 128);
      if (!/^[\w+=,.@-]{1,128}$/.test(name)) throw new ResourceFailure(`Invalid ManagedPolicyName ${name}`);
      const p = str(props, 'Path') ?? '/';
      const doc = props.PolicyDocument;
      if (!isObject(doc))
        throw new ResourceFailure('Properties validation failed: #/PolicyDocument: expected type: JSONObject');
      checkIamPolicy(doc);
      for (const k of ['Groups', 'Roles', 'Users'])
        if (props[k] !== undefined) throw new ResourceFailure(`the stand-in has no IAM entities to attach to (${k})`);
      const arn = `arn:aws:iam::${stack.accountId}:policy${p}${name}`;
      if (cfn.managedPolicies.has(arn))
        throw new ResourceFailure(
          `A policy called ${name} already exists. Duplicate names are not allowed. (Service: Iam, Status Code: 409, Error Code: EntityAlreadyExists)`,
        );
      cfn.managedPolicies.set(arn, { name, document: doc });
      return {
        physicalId: arn,
        ref: arn,
        attributes: { PolicyArn: arn, IsAttachable: 'true', DefaultVersionId: 'v1', AttachmentCount: '0' },
      };
    },
    async delete(r, ctx) {
      ctx.cfn.managedPolicies.delete(r.physicalId);
    },
  },
};

function defaultKeyPolicy(accountId: string): JsonObject {
  return {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:*', Resource: '*' },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Policies

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: { AWS: string | string[] } | '*';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const globMatch = (glob: string, s: string) =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  ).test(s);
const PRINCIPAL_ARN = /^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(root|role\/.+|user\/.+)$/;

function statementsOf(policy: JsonObject, what: string): PolicyStatement[] {
  if (policy.Version !== '2012-10-17') throw new ResourceFailure(`${what}: Version must be 2012-10-17`);
  const statements = asList(policy.Statement as Json);
  if (statements.length === 0) throw new ResourceFailure(`${what}: a policy needs at least one Statement`);
  for (const s of statements) {
    if (!isObject(s)) throw new ResourceFailure(`${what}: each Statement must be an object`);
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw new ResourceFailure(`${what}: Effect must be Allow or Deny`);
    if (
      asList(s.Action as Json).length === 0 ||
      asList(s.Action as Json).some((a) => typeof a !== 'string' || !/^[a-z0-9-]+:[A-Za-z*?]+$|^\*$/.test(a))
    )
      throw new ResourceFailure(`${what}: each Statement needs Action entries like service:Name`);
    if (asList(s.Resource as Json).length === 0 || asList(s.Resource as Json).some((r) => typeof r !== 'string'))
      throw new ResourceFailure(`${what}: each Statement needs a Resource`);
    if (s.Condition !== undefined) {
      if (!isObject(s.Condition)) throw new ResourceFailure(`${what}: Condition must be an object`);
      for (const [op, block] of Object.entries(s.Condition))
        if (
          !isObject(block) ||
          Object.values(block).some(
            (v) => typeof v !== 'string' && !(Array.isArray(v) && v.every((x) => typeof x === 'string')),
          )
        )
          throw new ResourceFailure(`${what}: Condition ${op} must map condition keys to strings`);
    }
  }
  return statements as unknown as PolicyStatement[];
}

/** As KMS: principals must be valid, and the policy must not lock the account out of the key. */
function checkKeyPolicy(policy: JsonObject, accountId: string, bypassLockoutCheck: boolean): void {
  const statements = statementsOf(policy, 'MalformedPolicyDocumentException');
  for (const s of statements) {
    if (s.Principal === undefined || s.Principal === '*') continue;
    for (const p of asList(s.Principal.AWS))
      if (!PRINCIPAL_ARN.test(p) && !/^[0-9]{12}$/.test(p))
        throw new ResourceFailure(
          `Policy contains a statement with one or more invalid principals. (Service: Kms, Status Code: 400, Error Code: MalformedPolicyDocumentException)`,
        );
  }
  if (bypassLockoutCheck) return;
  const root = `arn:aws:iam::${accountId}:root`;
  const manageable = statements.some(
    (s) =>
      s.Effect === 'Allow' &&
      s.Principal !== undefined &&
      (s.Principal === '*' || asList(s.Principal.AWS).some((p) => p === root || p === accountId)) &&
      asList(s.Action).some((a) => globMatch(a, 'kms:PutKeyPolicy')),
  );
  if (!manageable)
    throw new ResourceFailure(
      'The new key policy will not allow you to update the key policy in the future. (Service: Kms, Status Code: 400, Error Code: MalformedPolicyDocumentException)',
    );
}

/** As IAM: identity policies have no Principal and alphanumeric Sids. */
function checkIamPolicy(doc: JsonObject): void {
  const statements = statementsOf(doc, 'MalformedPolicyDocument');
  for (const s of statements) {
    if (s.Principal !== undefined)
      throw new ResourceFailure('MalformedPolicyDocument: Policy document should not specify a principal.');
    if (s.Sid !== undefined && !/^[A-Za-z0-9]*$/.test(s.Sid))
      throw new ResourceFailure(`MalformedPolicyDocument: Statement IDs (SID) must be alpha-numeric`);
  }
}

/** KMS API operations a key policy can name (for expanding wildcards such as kms:GenerateDataKey*). */
const KMS_ACTIONS = [
  'CancelKeyDeletion',
  'CreateAlias',
  'CreateGrant',
  'Decrypt',
  'DeleteAlias',
  'DescribeKey',
  'DisableKey',
  'DisableKeyRotation',
  'EnableKey',
  'EnableKeyRotation',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateMac',
  'GetKeyPolicy',
  'GetKeyRotationStatus',
  'ListAliases',
  'ListGrants',
  'ListKeyPolicies',
  'ListResourceTags',
  'PutKeyPolicy',
  'ReEncryptFrom',
  'ReEncryptTo',
  'RetireGrant',
  'RevokeGrant',
  'RotateKeyOnDemand',
  'ScheduleKeyDeletion',
  'TagResource',
  'UntagResource',
  'UpdateAlias',
  'UpdateKeyDescription',
  'VerifyMac',
];
/** The operations whose requests carry an EncryptionContext (conditions on it apply to them only). */
const CONTEXT_ACTIONS = new Set([
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
]);

export interface KeyPermissions {
  /** Operations (without the kms: prefix) the principal may call. */
  ops: string[];
  /** Required EncryptionContext pairs (from StringEquals on kms:EncryptionContext:<key>) for the context operations. */
  contextEquals?: Record<string, string>;
  /** From StringLike on kms:EncryptionContext:ecs-secrets:name. */
  contextNameLike?: string;
  /** From StringLike on any other kms:EncryptionContext:<key> (e.g. ecs-secrets:config). */
  contextLike?: Record<string, string>;
}

/**
 * What a key policy lets one principal do, in the terms the KMS stand-in can enforce. Throws if the
 * policy needs more than it can express (Deny statements, other condition operators, or different
 * conditions for different context operations), so a test never silently enforces less.
 */
export function keyPolicyPermissions(policy: JsonObject, principalArn: string): KeyPermissions {
  const ops = new Set<string>();
  let condition: Omit<KeyPermissions, 'ops'> | undefined;
  let unconditionedContextOp = false;
  for (const s of statementsOf(policy, 'key policy')) {
    const mine = s.Principal === '*' || (s.Principal !== undefined && asList(s.Principal.AWS).includes(principalArn));
    if (!mine) continue;
    if (s.Effect === 'Deny') throw new Error('the KMS stand-in cannot express Deny statements');
    const granted = KMS_ACTIONS.filter((op) => asList(s.Action).some((a) => a === '*' || globMatch(a, `kms:${op}`)));
    granted.forEach((op) => ops.add(op));
    const touchesContext = granted.some((op) => CONTEXT_ACTIONS.has(op));
    if (!s.Condition) {
      if (touchesContext) unconditionedContextOp = true;
      continue;
    }
    const c: Omit<KeyPermissions, 'ops'> = {};
    for (const [operator, block] of Object.entries(s.Condition)) {
      for (const [key, value] of Object.entries(block)) {
        const m = /^kms:EncryptionContext:(.+)$/i.exec(key);
        if (!m || Array.isArray(value)) throw new Error(`the KMS stand-in cannot express condition ${operator} ${key}`);
        if (operator === 'StringEquals') (c.contextEquals ??= {})[m[1]] = value;
        else if (operator === 'StringLike' && m[1] === 'ecs-secrets:name') c.contextNameLike = value;
        else if (operator === 'StringLike') (c.contextLike ??= {})[m[1]] = value;
        else throw new Error(`the KMS stand-in cannot express condition ${operator} ${key}`);
      }
    }
    if (!touchesContext)
      throw new Error('the KMS stand-in cannot condition operations that carry no EncryptionContext');
    if (condition && JSON.stringify(condition) !== JSON.stringify(c))
      throw new Error('the KMS stand-in allows one condition per principal');
    condition = c;
  }
  if (condition && unconditionedContextOp)
    throw new Error('the KMS stand-in cannot mix conditioned and unconditioned context operations');
  return { ops: [...ops].sort(), ...condition };
}

// ---------------------------------------------------------------------------------------------
// Stacks

export interface StackEvent {
  EventId: string;
  StackId: string;
  StackName: string;
  LogicalResourceId: string;
  PhysicalResourceId: string;
  ResourceType: string;
  Timestamp: Date;
  ResourceStatus: string;
  ResourceStatusReason?: string;
  ClientRequestToken?: string;
}

export interface Stack {
  name: string;
  id: string;
  accountId: string;
  region: string;
  status: string;
  statusReason?: string;
  creationTime: Date;
  deletionTime?: Date;
  parameters: Record<string, string>;
  /** Parameters as declared, for DescribeStacks (NoEcho values masked). */
  template: Template;
  capabilities: string[];
  tags: Array<{ Key: string; Value: string }>;
  outputs: Array<{ OutputKey: string; OutputValue: string; Description?: string }>;
  /** In creation order. */
  resources: Map<string, Created>;
  /** Oldest first (DescribeStackEvents serves them newest first). */
  events: StackEvent[];
  clientRequestToken?: string;
  retainExceptOnCreate: boolean;
  onFailure: 'ROLLBACK' | 'DELETE' | 'DO_NOTHING';
  /** The create or delete running for this stack. */
  work: Promise<void>;
}

interface Hold {
  logicalId: string;
  reached: Promise<void>;
  reach(): void;
  released: Promise<void>;
  release(): void;
}

export interface CloudFormationStandInOptions {
  kms: KmsStandIn;
  dynamoEndpoint: string;
  port?: number;
  /** Principal ARN -> access key id: keys' policies become KMS stand-in permissions for these. */
  principals?: Record<string, string>;
}

export class CloudFormationStandIn extends StandInServer {
  readonly kms: KmsStandIn;
  readonly accountId: string;
  readonly region: string;
  /** Every stack ever created, deleted ones included (they stay visible by stack id). */
  readonly stacks: Stack[] = [];
  /** Managed policies the stacks created: ARN -> name and resolved document. */
  readonly managedPolicies = new Map<string, { name: string; document: JsonObject }>();
  /** Key ids deleted (scheduled for deletion) by stack rollbacks and deletions. */
  readonly deletedKeys: string[] = [];
  /** Requests per CloudFormation action (the base class counts them all under '(query)'). */
  readonly actions: Record<string, number> = {};
  private readonly principals: Record<string, string>;
  private readonly failures = new Map<string, string>();
  private readonly holds: Hold[] = [];
  private readonly nextErrors = new Map<string, CfnError>();
  private readonly dynamoEndpoint: string;
  private ddb: DynamoDBClient | undefined;

  constructor(opts: CloudFormationStandInOptions) {
    super(opts.port ?? 0, ['(query)']);
    this.kms = opts.kms;
    this.accountId = opts.kms.accountId;
    this.region = opts.kms.region;
    this.dynamoEndpoint = opts.dynamoEndpoint;
    this.principals = { ...opts.principals };
    for (const a of CFN_ACTIONS) this.actions[a] = 0;
  }

  /** Make the named resource fail to create with this reason (until clearFailures()). */
  failResource(logicalId: string, reason: string): void {
    this.failures.set(logicalId, reason);
  }

  clearFailures(): void {
    this.failures.clear();
    this.nextErrors.clear();
  }

  /** Answer the next request for this action with this error (once). */
  failNext(action: (typeof CFN_ACTIONS)[number], code: string, message: string, status = 400): void {
    this.nextErrors.set(action, new CfnError(code, message, status));
  }

  /** Pause stack creation just before this resource; `reached` resolves when creation gets there. */
  holdBefore(logicalId: string): { reached: Promise<void>; release(): void } {
    let reach!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((r) => (reach = r));
    const released = new Promise<void>((r) => (release = r));
    const hold: Hold = { logicalId, reached, reach, released, release };
    this.holds.push(hold);
    return { reached, release };
  }

  /** The live (not deleted) stack with this name or id. */
  stack(nameOrId: string): Stack | undefined {
    if (nameOrId.startsWith('arn:')) return this.stacks.find((s) => s.id === nameOrId);
    return this.stacks.find((s) => s.name === nameOrId && s.status !== 'DELETE_COMPLETE');
  }

  /** Resolves when no stack operation is running. */
  async idle(): Promise<void> {
    await Promise.all(this.stacks.map((s) => s.work));
  }

  override async close(): Promise<void> {
    for (const h of this.holds) h.release();
    await this.idle();
    this.ddb?.destroy();
    await super.close();
  }

  /** Translate a key policy into KMS stand-in permissions for the principals we know. */
  applyKeyPolicy(policy: JsonObject): void {
    for (const [arn, akid] of Object.entries(this.principals)) {
      const p = keyPolicyPermissions(policy, arn);
      const condition =
        p.contextEquals || p.contextNameLike || p.contextLike
          ? { contextEquals: p.contextEquals, contextNameLike: p.contextNameLike, contextLike: p.contextLike }
          : undefined;
      this.kms.setPermissions(akid, p.ops, condition);
    }
  }

  dynamoClient(): DynamoDBClient {
    this.ddb ??= new DynamoDBClient({
      endpoint: this.dynamoEndpoint,
      region: this.region,
      credentials: { accessKeyId: 'AKIDCLOUDFORMATION', secretAccessKey: 'secret' },
    });
    return this.ddb;
  }

  // --- protocol -------------------------------------------------------------------------------

  protected operationOf(): string {
    return '(query)'; // the action is in the body, which is not read yet
  }

  protected sendThrottled(res: http.ServerResponse): void {
    this.sendError(res, new CfnError('Throttling', 'Rate exceeded'));
  }

  protected handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    readBody(req)
      .then((body) => {
        const params = new URLSearchParams(body);
        const action = params.get('Action') ?? '';
        this.actions[action] = (this.actions[action] ?? 0) + 1;
        if (req.method !== 'POST') throw new CfnError('InvalidAction', 'the stand-in accepts POST only');
        if (params.get('Version') !== API_VERSION)
          throw new CfnError('InvalidParameterValue', `unsupported API version ${params.get('Version')}`);
        const injected = this.nextErrors.get(action);
        if (injected) {
          this.nextErrors.delete(action);
          throw injected;
        }
        return this.dispatch(action, params).then((result) => ({ action, result }));
      })
      .then(
        ({ action, result }) => this.sendXml(res, 200, envelope(action, result)),
        (err: unknown) =>
          this.sendError(res, err instanceof CfnError ? err : new CfnError('InternalFailure', String(err), 500)),
      );
  }

  private sendXml(res: http.ServerResponse, status: number, xml: string): void {
    if (res.destroyed || res.writableEnded) return;
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/xml');
    res.setHeader('Content-Length', Buffer.byteLength(xml));
    res.setHeader('x-amzn-RequestId', randomUUID());
    res.end(xml);
  }

  private sendError(res: http.ServerResponse, err: CfnError): void {
    const type = err.status >= 500 ? 'Receiver' : 'Sender';
    this.sendXml(
      res,
      err.status,
      `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${type}</Type><Code>${esc(err.code)}</Code><Message>${esc(err.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
    );
  }

  private async dispatch(action: string, p: URLSearchParams): Promise<Json | undefined> {
    switch (action) {
      case 'CreateStack':
        return { StackId: this.createStack(p) };
      case 'DescribeStacks': {
        const name = p.get('StackName');
        const stacks = name ? [this.requireStack(name)] : this.stacks.filter((s) => s.status !== 'DELETE_COMPLETE');
        return { Stacks: stacks.map((s) => describeStack(s)) };
      }
      case 'DescribeStackEvents': {
        const s = this.requireStack(p.get('StackName') ?? '');
        const all = [...s.events].reverse();
        const start = Number(p.get('NextToken') ?? '0');
        if (!Number.isInteger(start) || start < 0) throw new CfnError('ValidationError', 'Invalid NextToken');
        const page = all.slice(start, start + EVENTS_PAGE_SIZE);
        const next = start + EVENTS_PAGE_SIZE < all.length ? String(start + EVENTS_PAGE_SIZE) : undefined;
        return { StackEvents: page.map(eventJson), ...(next ? { NextToken: next } : {}) };
      }
      case 'DeleteStack':
        this.deleteStack(p);
        return undefined;
      default:
        throw new CfnError('InvalidAction', `The action ${action} is not valid for this web service.`);
    }
  }

  private requireStack(nameOrId: string): Stack {
    const s = this.stack(nameOrId);
    if (!s) throw new CfnError('ValidationError', `Stack with id ${nameOrId} does not exist`);
    return s;
  }

  // --- CreateStack ----------------------------------------------------------------------------

  private createStack(p: URLSearchParams): string {
    const name = p.get('StackName') ?? '';
    if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(name))
      throw new CfnError(
        'ValidationError',
        `1 validation error detected: Value '${name}' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*`,
      );
    const token = p.get('ClientRequestToken') ?? undefined;
    const existing = this.stack(name);
    if (existing) {
      if (token !== undefined && existing.clientRequestToken === token) return existing.id; // an idempotent retry
      throw new CfnError('AlreadyExistsException', `Stack [${name}] already exists`);
    }
    const body = p.get('TemplateBody');
    if (body === null) throw new CfnError('ValidationError', 'Either Template URL or Template Body must be specified.');
    if (Buffer.byteLength(body) > 51_200)
      throw new CfnError(
        'ValidationError',
        "1 validation error detected: Value at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to 51200",
      );
    const template = parseTemplate(body);

    const given: Record<string, string> = {};
    for (const m of members(p, 'Parameters')) {
      const key = m.get('ParameterKey');
      if (key) given[key] = m.get('ParameterValue') ?? '';
    }
    const unknown = Object.keys(given).filter((k) => !(k in template.parameters));
    if (unknown.length)
      throw new CfnError('ValidationError', `Parameters: [${unknown.join(', ')}] do not exist in the template`);
    const parameters: Record<string, string> = {};
    const missing: string[] = [];
    for (const [k, decl] of Object.entries(template.parameters)) {
      const v = given[k] ?? decl.Default;
      if (v === undefined) {
        missing.push(k);
        continue;
      }
      const constraint = () =>
        new CfnError(
          'ValidationError',
          `Parameter ${k} failed to satisfy constraint: ${decl.ConstraintDescription ?? `Malformed input-Parameter ${k} must match pattern ${decl.AllowedPattern}`}`,
        );
      if (decl.AllowedPattern !== undefined && !new RegExp(`^(?:${decl.AllowedPattern})$`).test(v)) throw constraint();
      if (decl.AllowedValues !== undefined && !decl.AllowedValues.includes(v)) throw constraint();
      parameters[k] = v;
    }
    if (missing.length) throw new CfnError('ValidationError', `Parameters: [${missing.join(', ')}] must have values`);

    const capabilities = members(p, 'Capabilities').map((m) => m.get('') ?? '');
    const needed = new Set<string>();
    for (const r of template.resources.values()) {
      const cap = PROVIDERS[r.Type].capability?.(r.Properties);
      if (cap) needed.add(cap);
    }
    const named = needed.has('CAPABILITY_NAMED_IAM');
    if (
      (named && !capabilities.includes('CAPABILITY_NAMED_IAM')) ||
      (!named && needed.size && !capabilities.some((c) => /IAM$/.test(c)))
    )
      throw new CfnError(
        'InsufficientCapabilitiesException',
        `Requires capabilities : [${named ? 'CAPABILITY_NAMED_IAM' : 'CAPABILITY_IAM'}]`,
      );

    for (const [id, r] of template.resources) {
      const provider = PROVIDERS[r.Type];
      const bad = Object.keys(r.Properties).filter((k) => !provider.properties.includes(k));
      if (bad.length)
        throw new CfnError(
          'ValidationError',
          `Template format error: [/Resources/${id}/Properties] Encountered unsupported property ${bad[0]}`,
        );
      const absent = provider.required.filter((k) => r.Properties[k] === undefined);
      if (absent.length)
        throw new CfnError(
          'ValidationError',
          `Template format error: [/Resources/${id}/Properties] required key [${absent[0]}] not found`,
        );
    }

    const onFailure = (p.get('OnFailure') ??
      (p.get('DisableRollback') === 'true' ? 'DO_NOTHING' : 'ROLLBACK')) as Stack['onFailure'];
    const stack: Stack = {
      name,
      id: `arn:aws:cloudformation:${this.region}:${this.accountId}:stack/${name}/${randomUUID()}`,
      accountId: this.accountId,
      region: this.region,
      status: 'CREATE_IN_PROGRESS',
      statusReason: 'User Initiated',
      creationTime: new Date(),
      parameters,
      template,
      capabilities,
      tags: members(p, 'Tags').map((m) => ({ Key: m.get('Key') ?? '', Value: m.get('Value') ?? '' })),
      outputs: [],
      resources: new Map(),
      events: [],
      clientRequestToken: token,
      retainExceptOnCreate: p.get('RetainExceptOnCreate') === 'true',
      onFailure,
      work: Promise.resolve(),
    };
    this.stacks.push(stack);
    this.stackEvent(stack, 'CREATE_IN_PROGRESS', 'User Initiated');
    // After the response: CloudFormation creates resources asynchronously.
    stack.work = new Promise<void>((r) => setImmediate(r)).then(() => this.runCreate(stack));
    return stack.id;
  }

  private async runCreate(stack: Stack): Promise<void> {
    const scope: Scope = { stack, created: stack.resources };
    let failed: { id: string; reason: string } | undefined;
    for (const id of order(stack.template)) {
      const decl = stack.template.resources.get(id) as ResourceDecl;
      const hold = this.holds.find((h) => h.logicalId === id);
      if (hold) {
        this.holds.splice(this.holds.indexOf(hold), 1);
        hold.reach();
        await hold.released;
      }
      this.resourceEvent(stack, id, decl.Type, '', 'CREATE_IN_PROGRESS');
      try {
        const injected = this.failures.get(id);
        if (injected !== undefined) throw new ResourceFailure(injected);
        const props = resolve(decl.Properties, scope) as JsonObject;
        const made = await PROVIDERS[decl.Type].create(props, { cfn: this, stack, logicalId: id });
        stack.resources.set(id, {
          ...made,
          logicalId: id,
          type: decl.Type,
          properties: props,
          deletionPolicy: decl.DeletionPolicy,
        });
        this.resourceEvent(stack, id, decl.Type, made.physicalId, 'CREATE_IN_PROGRESS', 'Resource creation Initiated');
        this.resourceEvent(stack, id, decl.Type, made.physicalId, 'CREATE_COMPLETE');
      } catch (err) {
        const reason =
          err instanceof ResourceFailure || err instanceof CfnError ? err.message : `Internal Failure: ${String(err)}`;
        this.resourceEvent(stack, id, decl.Type, '', 'CREATE_FAILED', reason);
        failed = { id, reason };
        break;
      }
    }
    if (!failed) {
      try {
        stack.outputs = Object.entries(stack.template.outputs).map(([key, o]) => {
          const v = resolve(o.Value, scope);
          if (typeof v !== 'string') throw new ResourceFailure(`Template error: output ${key} is not a string`);
          return { OutputKey: key, OutputValue: v, Description: o.Description };
        });
        this.stackEvent(stack, 'CREATE_COMPLETE');
        return;
      } catch (err) {
        failed = { id: stack.name, reason: (err as Error).message };
      }
    }
    const reason = `The following resource(s) failed to create: [${failed.id}]. `;
    if (stack.onFailure === 'DO_NOTHING') {
      this.stackEvent(stack, 'CREATE_FAILED', reason);
      return;
    }
    if (stack.onFailure === 'DELETE') {
      this.stackEvent(stack, 'DELETE_IN_PROGRESS', `${reason}Delete requested by user.`);
      await this.deleteResources(stack, true);
      stack.deletionTime = new Date();
      this.stackEvent(stack, 'DELETE_COMPLETE');
      return;
    }
    this.stackEvent(stack, 'ROLLBACK_IN_PROGRESS', `${reason}Rollback requested by user.`);
    // The failed resource is cleaned up too.
    this.resourceEvent(
      stack,
      failed.id,
      stack.template.resources.get(failed.id)?.Type ?? 'AWS::CloudFormation::Stack',
      '',
      'DELETE_COMPLETE',
    );
    const ok = await this.deleteResources(stack, true);
    this.stackEvent(stack, ok ? 'ROLLBACK_COMPLETE' : 'ROLLBACK_FAILED');
  }

  /** Delete a stack's resources in reverse creation order, honouring DeletionPolicy. */
  private async deleteResources(stack: Stack, rollingBackCreate: boolean): Promise<boolean> {
    let ok = true;
    for (const r of [...stack.resources.values()].reverse()) {
      const retain =
        r.deletionPolicy === 'RetainExceptOnCreate'
          ? !rollingBackCreate
          : r.deletionPolicy === 'Retain' && !(rollingBackCreate && stack.retainExceptOnCreate);
      if (retain) {
        this.resourceEvent(stack, r.logicalId, r.type, r.physicalId, 'DELETE_SKIPPED');
        continue;
      }
      this.resourceEvent(stack, r.logicalId, r.type, r.physicalId, 'DELETE_IN_PROGRESS');
      try {
        await PROVIDERS[r.type].delete(r, { cfn: this, stack, logicalId: r.logicalId });
        this.resourceEvent(stack, r.logicalId, r.type, r.physicalId, 'DELETE_COMPLETE');
      } catch (err) {
        ok = false;
        this.resourceEvent(stack, r.logicalId, r.type, r.physicalId, 'DELETE_FAILED', String((err as Error).message));
      }
    }
    return ok;
  }

  // --- DeleteStack ----------------------------------------------------------------------------

  private deleteStack(p: URLSearchParams): void {
    const name = p.get('StackName') ?? '';
    const stack = this.stack(name);
    if (!stack) return; // CloudFormation answers success for a stack that does not exist
    if (stack.status.endsWith('_IN_PROGRESS')) {
      if (stack.status === 'DELETE_IN_PROGRESS') return;
      throw new CfnError('ValidationError', `Stack [${stack.name}] cannot be deleted while in status ${stack.status}`);
    }
    this.stackEvent(stack, 'DELETE_IN_PROGRESS', 'User Initiated');
    stack.work = stack.work.then(async () => {
      const ok = await this.deleteResources(stack, false);
      if (ok) {
        stack.deletionTime = new Date();
        this.stackEvent(stack, 'DELETE_COMPLETE');
      } else {
        this.stackEvent(stack, 'DELETE_FAILED', 'The following resource(s) failed to delete');
      }
    });
  }

  // --- events ---------------------------------------------------------------------------------

  private stackEvent(stack: Stack, status: string, reason?: string): void {
    stack.status = status;
    stack.statusReason = reason;
    this.resourceEvent(stack, stack.name, 'AWS::CloudFormation::Stack', stack.id, status, reason);
  }

  private resourceEvent(
    stack: Stack,
    logicalId: string,
    type: string,
    physicalId: string,
    status: string,
    reason?: string,
  ): void {
    stack.events.push({
      EventId: `${logicalId}-${status}-${randomUUID()}`,
      StackId: stack.id,
      StackName: stack.name,
      LogicalResourceId: logicalId,
      PhysicalResourceId: physicalId,
      ResourceType: type,
      Timestamp: new Date(),
      ResourceStatus: status,
      ResourceStatusReason: reason,
      ClientRequestToken: stack.clientRequestToken,
    });
  }
}

export async function startCloudFormation(opts: CloudFormationStandInOptions): Promise<CloudFormationStandIn> {
  const cfn = new CloudFormationStandIn(opts);
  await cfn.start();
  return cfn;
}

// ---------------------------------------------------------------------------------------------
// Query protocol helpers

/** `Prefix.member.N.Field` (or `Prefix.member.N`) entries, as a list of per-member maps ('' = the value itself). */
function members(p: URLSearchParams, prefix: string): Map<string, string>[] {
  const byIndex = new Map<number, Map<string, string>>();
  for (const [k, v] of p) {
    const m = new RegExp(`^${prefix}\\.member\\.(\\d+)(?:\\.(.+))?$`).exec(k);
    if (!m) continue;
    const i = Number(m[1]);
    if (!byIndex.has(i)) byIndex.set(i, new Map());
    (byIndex.get(i) as Map<string, string>).set(m[2] ?? '', v);
  }
  return [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, m]) => m);
}

function describeStack(s: Stack): Json {
  return {
    StackId: s.id,
    StackName: s.name,
    Description: null,
    Parameters: Object.entries(s.parameters).map(([k, v]) => ({
      ParameterKey: k,
      ParameterValue:
        s.template.parameters[k]?.NoEcho === true || s.template.parameters[k]?.NoEcho === 'true' ? '****' : v,
    })),
    CreationTime: s.creationTime.toISOString(),
    ...(s.deletionTime ? { DeletionTime: s.deletionTime.toISOString() } : {}),
    StackStatus: s.status,
    ...(s.statusReason ? { StackStatusReason: s.statusReason } : {}),
    DisableRollback: s.onFailure === 'DO_NOTHING',
    Capabilities: s.capabilities,
    Outputs: s.outputs.map((o) => ({
      OutputKey: o.OutputKey,
      OutputValue: o.OutputValue,
      ...(o.Description ? { Description: o.Description } : {}),
    })),
    Tags: s.tags,
    RetainExceptOnCreate: s.retainExceptOnCreate,
  };
}

function eventJson(e: StackEvent): Json {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(e)) {
    if (v === undefined) continue;
    out[k] = v instanceof Date ? v.toISOString() : (v as string);
  }
  return out;
}

function envelope(action: string, result: Json | undefined): string {
  const inner = result === undefined ? '' : `<${action}Result>${toXml(result)}</${action}Result>`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${XMLNS}">${inner}<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`;
}

/** Query-protocol XML: objects become elements, arrays become <member> lists, null is left out. */
function toXml(v: Json): string {
  if (v === null) return '';
  if (Array.isArray(v)) return v.map((m) => `<member>${toXml(m)}</member>`).join('');
  if (isObject(v))
    return Object.entries(v)
      .filter(([, x]) => x !== null && x !== undefined)
      .map(([k, x]) => `<${k}>${toXml(x)}</${k}>`)
      .join('');
  return esc(String(v));
}

function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}
