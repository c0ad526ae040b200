/**
 * The secrets service: versioned secrets for one application, put together from the table
 * (storage.ts), a key provider (keys.ts) and payload sealing (crypto.ts). Both front ends, the
 * CLI and the daemon, go through this class and nothing below it.
 */
import { randomInt } from 'node:crypto';
import { openLegacy, openV2, sealV2 } from './crypto';
import { AppError } from './errors';
import { type DataKey, type EncryptionContext, type KeyProvider, encryptionContext } from './keys';
import { validateBinaryPayload, validatePayload, validateSecretName } from './names';
import type { SecretItem, SecretStore, VersionInfo } from './storage';

export const FORMAT_V2 = 2;

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
  /** An imported version: its origin, stored in the same conditional put as the version (import/run.ts). */
  origin?: Pick<SecretItem, 'source' | 'sourceAuthor' | 'sourceCreatedAt'>;
}

/** How many times a create retries when another writer took its serial. */
const MAX_CREATE_ATTEMPTS = 100;

export class SecretsService {
  constructor(
    readonly app: string,
    readonly store: SecretStore,
    readonly keys: KeyProvider,
  ) {}

  /**
   * Store a new version. The serial is the latest + 1, claimed by a conditional put; when another
   * writer claims it first we re-read the latest and try again, so concurrent creates never
   * overwrite each other. The data key is made once per call (its context names the secret, not
   * the serial); the payload is re-sealed for each serial tried, since the serial is in the AAD.
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
      return await serialize(() => this.claimSerial(name, plaintext, dataKey, binary, opts.origin));
    } finally {
      dataKey.plaintext.fill(0);
      plaintext.fill(0);
    }
  }

  /** Read the latest serial and claim the next one with a conditional put, retrying on a lost race. */
  private async claimSerial(
    name: string,
    plaintext: Buffer,
    dataKey: DataKey,
    binary: boolean,
    origin?: CreateOptions['origin'],
  ): Promise<Created> {
    let serial = (await this.store.latestSerial(name)) + 1;
    for (let attempt = 1; attempt <= MAX_CREATE_ATTEMPTS; attempt++) {
      const item: SecretItem = {
        name,
        serial,
        encryptedData: sealV2(dataKey.plaintext, plaintext, { app: this.app, name, serial }),
        encryptedDataKey: dataKey.encrypted.toString('base64'),
        active: true,
        format: FORMAT_V2,
        createdAt: new Date().toISOString(),
        binary: binary || undefined,
        ...origin,
      };
      if (await this.store.putNew(item)) return { name, serial };
      // Lost the race: jitter a little so a crowd of writers spreads out, then re-read the end.
      await new Promise((r) => setTimeout(r, randomInt(0, Math.min(50, 2 * attempt) + 1)));
      serial = Math.max(serial + 1, (await this.store.latestSerial(name)) + 1);
    }
    throw new AppError('conflict', `could not store a new version of ${name}: too many concurrent writers, try again`);
  }

  /** The latest active version, or one serial (a revoked one comes back with an empty payload). */
  async fetch(nameIn: string, serial?: number): Promise<SecretRecord> {
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
    } else if (item.format === FORMAT_V2) {
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

  async revoke(nameIn: string, serial: number): Promise<{ name: string; serial: number; active: false }> {
    const name = validateSecretName(nameIn);
    await this.store.revoke(name, serial);
    return { name, serial, active: false };
  }

  async list(): Promise<Array<{ name: string; latestSerial: number }>> {
    // Configuration documents share the table under `config/...` names; secret names have no '/'.
    return (await this.store.listNames()).filter((n) => !n.name.includes('/'));
  }

  async history(nameIn: string): Promise<VersionInfo[]> {
    const name = validateSecretName(nameIn);
    const versions = await this.store.history(name);
    if (versions.length === 0) throw new AppError('not_found', `secret ${name} not found`);
    return versions;
  }

  /** Reaches the table and the key once: what /health and setup --local check. */
  async check(): Promise<void> {
    await this.store.describe();
    await this.keys.describe();
  }

  private context(name: string): EncryptionContext {
    return encryptionContext(this.app, name);
  }
}
