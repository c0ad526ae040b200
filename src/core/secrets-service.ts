/**
 * The secrets service: versioned secrets for one application, put together from the table
 * (storage.ts), a key provider (keys.ts) and payload sealing (crypto.ts). Both front ends, the
 * CLI and the daemon, go through this class and nothing below it.
 */
import { openLegacy, openV2, sealV2 } from './crypto';
import { AppError } from './errors';
import { type DataKey, type EncryptionContext, type KeyProvider, encryptionContext } from './keys';
import { type LabelEvent, LabelStore, parseSecretRef, validateLabel } from './labels';
import { isSecretItemName, validateSecretName } from './names';
import { validateBinaryPayload, validatePayload } from './payload';
import { type ClaimOptions, RECORD_FORMAT, type SecretItem, type SecretStore, type VersionInfo } from './storage';

/**
 * The JSON shape of a fetched secret, as the original printed and served it. A binary secret adds
 * `encoding: 'base64'` and its `payload` is the base64 of the bytes; text secrets have no
 * `encoding` key at all, so their shape stays exactly the original's.
 */
export interface SecretRecord {
  name: string;
  serial: number;
  payload: string;
  active: boolean;
  encoding?: 'base64';
}

/** The bytes of a record's payload: decoded from base64 for a binary secret, UTF-8 for text. */
export function payloadBytes(record: Pick<SecretRecord, 'payload' | 'encoding'>): Buffer {
  return Buffer.from(record.payload, record.encoding === 'base64' ? 'base64' : 'utf8');
}

export interface Created {
  name: string;
  serial: number;
}

export interface CreateOptions {
  /**
   * Runs the claim of a serial (read the latest, conditional put). The daemon passes its per-name
   * queue here, so its own writers to one name never race; the data key is made before, outside it.
   */
  serialize?: (claim: () => Promise<Created>) => Promise<Created>;
  /** The payload is bytes stored as they are (item attribute Binary true); otherwise UTF-8 text. */
  binary?: boolean;
  /** A rollback: the serial whose payload this version repeats (item attribute RestoredFrom). */
  restoredFrom?: number;
  /** An imported version: its origin, stored in the same conditional put as the version (import/run.ts). */
  origin?: Pick<SecretItem, 'source' | 'sourceAuthor' | 'sourceCreatedAt'>;
  /** The serial the caller expects to be next (it wrote the one before): tried without reading first. */
  nextSerial?: number;
  /**
   * false: the change record is not told of this version; the caller notes the name once after
   * writing several (an import writes a secret's whole history, then notes it).
   */
  noteChange?: boolean;
}

export class SecretsService {
  constructor(
    readonly app: string,
    readonly store: SecretStore,
    readonly keys: KeyProvider,
  ) {}

  /**
   * Store a new version under the next serial (SecretStore.claimNextSerial). The data key is made
   * once per call (its context names the secret, not the serial); the payload is sealed again for
   * each serial tried, since the serial is in the AAD.
   * `binary`: the payload is bytes stored as they are (a Buffer; item attribute Binary true);
   * otherwise it must be UTF-8 text.
   */
  async create(nameIn: string, payloadIn: string | Buffer, opts: CreateOptions = {}): Promise<Created> {
    const name = validateSecretName(nameIn);
    const binary = opts.binary === true;
    const plaintext = binary
      ? Buffer.from(validateBinaryPayload(Buffer.isBuffer(payloadIn) ? payloadIn : Buffer.from(payloadIn, 'utf8')))
      : Buffer.from(validatePayload(payloadIn), 'utf8');
    const dataKey = await this.keys.generateDataKey(this.context(name));
    const serialize = opts.serialize ?? ((claim) => claim());
    try {
      // Only the claim of a serial is serialised: the data key above needs no serial.
      return await serialize(() =>
        this.claimSerial(
          name,
          plaintext,
          dataKey,
          binary,
          { restoredFrom: opts.restoredFrom, ...opts.origin },
          { expected: opts.nextSerial, noteChange: opts.noteChange },
        ),
      );
    } finally {
      dataKey.plaintext.fill(0);
      plaintext.fill(0);
    }
  }

  private async claimSerial(
    name: string,
    plaintext: Buffer,
    dataKey: DataKey,
    binary: boolean,
    extra: Pick<SecretItem, 'restoredFrom' | 'source' | 'sourceAuthor' | 'sourceCreatedAt'>,
    claim: ClaimOptions,
  ): Promise<Created> {
    const serial = await this.store.claimNextSerial(
      name,
      (serial): SecretItem => ({
        name,
        serial,
        encryptedData: sealV2(dataKey.plaintext, plaintext, { app: this.app, name, serial }),
        encryptedDataKey: dataKey.encrypted.toString('base64'),
        active: true,
        format: RECORD_FORMAT,
        createdAt: new Date().toISOString(),
        binary: binary || undefined,
        ...extra,
      }),
      name,
      claim,
    );
    return { name, serial };
  }

  /**
   * The latest active version, or one serial (a revoked one comes back with an empty payload).
   * `NAME@LABEL` (and `NAME@previous`) reads through a label: every delivery takes such references.
   */
  async fetch(nameIn: string, serial?: number): Promise<SecretRecord> {
    const ref = parseSecretRef(nameIn);
    if (ref.label !== undefined && serial === undefined) return this.fetchLabel(ref.name, ref.label);
    const name = validateSecretName(nameIn);
    const item = serial === undefined ? await this.store.latestActive(name) : await this.store.get(name, serial);
    if (!item)
      throw new AppError(
        'not_found',
        serial === undefined
          ? `secret ${name} not found (no active version)`
          : `secret ${name} has no serial ${serial}`,
      );
    return this.open(item);
  }

  /** Decrypt a stored item into the record served to users. Revoked items are never decrypted. */
  async open(item: SecretItem): Promise<SecretRecord> {
    const { name, serial } = item;
    if (!item.active) return { name, serial, payload: '', active: false };
    const encryptedKey = Buffer.from(item.encryptedDataKey, 'base64');
    let payload: Buffer;
    if (item.format === undefined) {
      const dataKey = await this.keys.decryptDataKey(encryptedKey, undefined);
      payload = openLegacy(dataKey, item.encryptedData, `${name} serial ${serial}`);
    } else if (item.format === RECORD_FORMAT) {
      const dataKey = await this.keys.decryptDataKey(encryptedKey, this.context(name));
      payload = openV2(dataKey, item.encryptedData, { app: this.app, name, serial });
    } else {
      throw new AppError(
        'integrity',
        `${name} serial ${serial} has record format ${item.format}, which this version cannot read`,
      );
    }
    if (item.binary === true)
      return { name, serial, payload: payload.toString('base64'), active: true, encoding: 'base64' };
    return { name, serial, payload: payload.toString('utf8'), active: true };
  }

  /**
   * Revoke one version. Always allowed, labelled or not (a leaked secret must go at once); the
   * labels left on it are named in the answer (absent when there are none) and fail when read.
   */
  async revoke(
    nameIn: string,
    serial: number,
  ): Promise<{ name: string; serial: number; active: false; labels?: string[] }> {
    const name = validateSecretName(nameIn);
    await this.store.revoke(name, serial);
    const left = labelsOf((await this.labelStore.read(name)).labels, serial);
    return left.length === 0 ? { name, serial, active: false } : { name, serial, active: false, labels: left };
  }

  async list(): Promise<Array<{ name: string; latestSerial: number }>> {
    return (await this.store.listNames()).filter((n) => isSecretItemName(n.name));
  }

  async history(nameIn: string): Promise<VersionInfo[]> {
    const name = validateSecretName(nameIn);
    const versions = await this.store.history(name);
    if (versions.length === 0) throw new AppError('not_found', `secret ${name} not found`);
    const { labels } = await this.labelStore.read(name);
    for (const v of versions) {
      const on = labelsOf(labels, v.serial);
      if (on.length > 0) v.labels = on;
    }
    return versions;
  }

  /** Labels and their last moves: `label list`. */
  async labelList(nameIn: string): Promise<{ name: string; labels: Record<string, number>; events: LabelEvent[] }> {
    const name = validateSecretName(nameIn);
    const { labels, events } = await this.labelStore.read(name);
    // Printed in the contract's key order whatever order the table kept.
    const ordered = events.map(({ label, from, to, at, by }) => ({ label, from, to, at, by }));
    return { name, labels: Object.fromEntries(Object.entries(labels).sort()), events: ordered };
  }

  /** Point a label at an active version (moving it if it was elsewhere). */
  async setLabel(
    nameIn: string,
    labelIn: string,
    serial: number,
  ): Promise<{ name: string; label: string; serial: number; from?: number }> {
    const name = validateSecretName(nameIn);
    const label = validateLabel(labelIn);
    const item = await this.store.get(name, serial);
    if (!item) throw new AppError('not_found', `secret ${name} has no serial ${serial}`);
    if (!item.active)
      throw new AppError('usage', `${name} serial ${serial} is revoked: a label may point only at an active version`);
    const from = await this.labelStore.move(name, label, serial);
    return { name, label, serial, from };
  }

  async removeLabel(nameIn: string, labelIn: string): Promise<{ name: string; label: string; from: number }> {
    const name = validateSecretName(nameIn);
    const label = validateLabel(labelIn);
    const from = (await this.labelStore.move(name, label, undefined)) as number;
    return { name, label, from };
  }

  /**
   * Read through a label. `latest` is the latest active version; `previous` the newest active one
   * older than it. A label left on a revoked version fails naming that serial, and never falls
   * back to another version.
   */
  async fetchLabel(nameIn: string, label: string): Promise<SecretRecord> {
    const name = validateSecretName(nameIn);
    if (label === 'latest') return this.fetch(name);
    if (label === 'previous') {
      const item = await this.store.latestActive(name, 1);
      if (!item) throw new AppError('not_found', `secret ${name} has no previous version (fewer than two active)`);
      return this.open(item);
    }
    const serial = (await this.labelStore.read(name)).labels[label];
    if (serial === undefined) throw new AppError('not_found', `secret ${name} has no label ${label}`);
    const item = await this.store.get(name, serial);
    if (!item)
      throw new AppError('not_found', `label ${label} of ${name} points at serial ${serial}, which does not exist`);
    if (!item.active)
      throw new AppError('not_found', `label ${label} of ${name} points at serial ${serial}, which is revoked`);
    return this.open(item);
  }

  /**
   * Write a NEW version holding the payload of `to` (default: previous), recording RestoredFrom:
   * readers of latest see a change, and history keeps every step.
   */
  async rollback(nameIn: string, to?: number): Promise<Created & { restoredFrom: number }> {
    const name = validateSecretName(nameIn);
    const source = to === undefined ? await this.fetchLabel(name, 'previous') : await this.fetch(name, to);
    if (!source.active)
      throw new AppError('usage', `${name} serial ${source.serial} is revoked: a revoked value is never restored`);
    const binary = source.encoding === 'base64';
    const payload = binary ? Buffer.from(source.payload, 'base64') : source.payload;
    const created = await this.create(name, payload, { binary, restoredFrom: source.serial });
    return { ...created, restoredFrom: source.serial };
  }

  private get labelStore(): LabelStore {
    this.labelItems ??= new LabelStore(this.store);
    return this.labelItems;
  }
  private labelItems: LabelStore | undefined;

  /** Reaches the table and the key once: what /health and setup --local check. */
  async check(): Promise<void> {
    await this.store.describe();
    await this.keys.describe();
  }

  private context(name: string): EncryptionContext {
    return encryptionContext(this.app, name);
  }
}

/** The labels pointing at `serial`, sorted. */
function labelsOf(labels: Record<string, number>, serial: number): string[] {
  return Object.keys(labels)
    .filter((l) => labels[l] === serial)
    .sort();
}
