/**
 * Labels: movable pins such as `prod` → serial 7, kept on one item per name at Serial 0 (never a
 * version: serials start at 1, and every version query starts at 1). The item holds `Labels`
 * (M: label → serial), `LabelEvents` (the last MAX_LABEL_EVENTS moves) and `LabelRev`, a counter
 * every write checks and bumps, so two concurrent moves never lose one: the loser re-reads and
 * tries again. Also the rules for a label and for a `NAME@LABEL` reference.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { AppError, fromAwsError } from './errors';
import { validateSecretName } from './names';
import { LABEL_SERIAL, type SecretStore } from './storage';

const LABEL_RULE = /^[a-z][a-z0-9-]{0,31}$/;
/** Names a reader may use after `@` but no one may set: they follow the versions by themselves. */
const RESERVED_LABELS: readonly string[] = ['latest', 'previous'];
const MAX_LABEL_EVENTS = 100;
const MAX_MOVE_ATTEMPTS = 200;

export interface LabelEvent {
  label: string;
  /** Absent on a first set. */
  from?: number;
  /** Absent on a removal. */
  to?: number;
  at: string;
  by?: string;
}

export interface Labels {
  labels: Record<string, number>;
  events: LabelEvent[];
}

/** A label to set or remove: the rule, and not a reserved name. */
export function validateLabel(label: unknown): string {
  const l = validateReadLabel(label);
  if (RESERVED_LABELS.includes(l))
    throw new AppError('usage', `the label ${JSON.stringify(l)} is reserved: it always follows the versions`);
  return l;
}

/** A label to read through: the rule (the reserved `latest` and `previous` included). */
export function validateReadLabel(label: unknown): string {
  if (typeof label !== 'string' || !LABEL_RULE.test(label))
    throw new AppError(
      'usage',
      `invalid label ${JSON.stringify(String(label).slice(0, 40))}: use 1 to 32 characters from a-z 0-9 -, starting with a letter (e.g. prod)`,
    );
  return label;
}

/** A secret reference: `NAME` or `NAME@LABEL` (secret names cannot hold `@`). */
export interface SecretRef {
  name: string;
  label?: string;
}

export function parseSecretRef(spec: unknown): SecretRef {
  if (typeof spec !== 'string') return { name: validateSecretName(spec) };
  const at = spec.indexOf('@');
  if (at < 0) return { name: validateSecretName(spec) };
  return { name: validateSecretName(spec.slice(0, at)), label: validateReadLabel(spec.slice(at + 1)) };
}

/** Validate a reference and give it back as written (what selections carry around). */
export function validateSecretRef(spec: unknown): string {
  parseSecretRef(spec);
  return spec as string;
}

/** The label item of one name: read it, or move one label on it. */
export class LabelStore {
  constructor(private readonly store: SecretStore) {}

  async read(name: string): Promise<Labels> {
    return (await this.readRaw(name)).value;
  }

  /**
   * Point `label` at `serial`, or remove it (`serial` undefined); appends the event even when the
   * label stays where it was. Returns where the label pointed before. Throws not_found when
   * removing a label that does not exist.
   */
  async move(name: string, label: string, serial: number | undefined): Promise<number | undefined> {
    const by = await this.store.principal();
    for (let attempt = 1; attempt <= MAX_MOVE_ATTEMPTS; attempt++) {
      const { value, writes: before, rev } = await this.readRaw(name);
      const from = value.labels[label];
      if (serial === undefined && from === undefined)
        throw new AppError('not_found', `secret ${name} has no label ${label}`);
      const labels = { ...value.labels };
      if (serial === undefined) delete labels[label];
      else labels[label] = serial;
      const event: LabelEvent = { label, from, to: serial, at: new Date().toISOString(), by };
      const events = [...value.events, event].slice(-MAX_LABEL_EVENTS);
      const id = randomBytes(8).toString('hex');
      const writes = [...before, id].slice(-MAX_LABEL_EVENTS);
      // The put may have been applied and its answer lost (a timeout on a busy host), in which
      // case the SDK's retry of it failed the condition our own write had changed: moving again
      // would record the move twice. Our write's id in the item says it was applied.
      if ((await this.write(name, labels, events, writes, rev)) || (await this.readRaw(name)).writes.includes(id)) {
        await this.store.noteChange(name, 'label');
        return from;
      }
      // Another writer moved a label first: spread out a little, then start again from its result.
      await new Promise((r) => setTimeout(r, randomInt(0, Math.min(50, 2 * attempt) + 1)));
    }
    throw new AppError('conflict', `could not move label ${label} of ${name}: too many concurrent writers, try again`);
  }

  private async write(
    name: string,
    labels: Record<string, number>,
    events: LabelEvent[],
    writes: string[],
    rev: number,
  ) {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: {
            Name: name,
            Serial: LABEL_SERIAL,
            Labels: labels,
            LabelEvents: events,
            LabelRev: rev + 1,
            LabelWrites: writes,
          },
          ConditionExpression: rev === 0 ? 'attribute_not_exists(#n)' : 'LabelRev = :rev',
          ExpressionAttributeNames: rev === 0 ? { '#n': 'Name' } : undefined,
          ExpressionAttributeValues: rev === 0 ? undefined : { ':rev': rev },
        }),
      );
      return true;
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') return false;
      throw fromAwsError(err, `moving a label of ${name}`);
    }
  }

  private async readRaw(name: string): Promise<{ value: Labels; writes: string[]; rev: number }> {
    let item: Record<string, unknown> | undefined;
    try {
      item = (
        await this.store.doc.send(
          new GetCommand({
            TableName: this.store.table,
            Key: { Name: name, Serial: LABEL_SERIAL },
            ConsistentRead: true,
          }),
        )
      ).Item;
    } catch (err) {
      throw fromAwsError(err, `reading the labels of ${name}`);
    }
    if (!item) return { value: { labels: {}, events: [] }, writes: [], rev: 0 };
    const bad = (why: string) =>
      new AppError('integrity', `integrity check failed: the label item of ${name} (Serial 0) is malformed: ${why}`);
    const { Labels: labels, LabelEvents: events, LabelRev: rev, LabelWrites: writes = [] } = item;
    if (typeof rev !== 'number' || !Number.isSafeInteger(rev) || rev < 1) throw bad('LabelRev is not a whole number');
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw bad('Labels is not a map');
    for (const s of Object.values(labels))
      if (!Number.isSafeInteger(s) || (s as number) < 1) throw bad('a label is not a serial');
    if (!Array.isArray(events)) throw bad('LabelEvents is not a list');
    // Absent on items written before moves carried an id.
    if (!Array.isArray(writes) || !writes.every((w) => typeof w === 'string')) throw bad('LabelWrites is not a list');
    return {
      value: { labels: labels as Record<string, number>, events: events as LabelEvent[] },
      writes: writes as string[],
      rev,
    };
  }
}
