/**
 * Where a document's data key goes: the `sops.kms` entry (AWS: KMS Encrypt/Decrypt under the
 * application's key with the config EncryptionContext, exactly as sops' kms keysource does) or the
 * `sops.age` entry (`--local`: an age X25519 identity in the data dir). One random 32-byte data key
 * per document version, made here, never by KMS (sops makes its own data key too).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KMSClient } from '@aws-sdk/client-kms';
import { AppError, fromAwsError } from '../core/errors';
import { type EncryptionContext, kmsSdk } from '../core/keys';
import { readOrCreatePrivateFile } from '../core/private-files';
import { AGE_IDENTITY_FILE, ageIdentities } from './age-identities';
import { type AgeEntry, type KmsEntry, type SopsMetadata, rfc3339 } from './sops';

/** The context every config data key is bound to: which application, which path. */
export function configContext(app: string, configPath: string | undefined): EncryptionContext {
  return configPath === undefined
    ? { 'ecs-secrets:application': app }
    : { 'ecs-secrets:application': app, 'ecs-secrets:config': configPath };
}

export interface ConfigKeySource {
  /** A fresh data key and the sops key entries that wrap it. */
  newDataKey(
    app: string,
    configPath: string | undefined,
  ): Promise<{ dataKey: Buffer; keys: { kms?: KmsEntry[]; age?: AgeEntry[] } }>;
  /** Unwrap the data key from a document's sops block; refuses one made for another path or app. */
  dataKey(meta: SopsMetadata, app: string, configPath: string | undefined): Promise<Buffer>;
}

export class KmsConfigKeys implements ConfigKeySource {
  constructor(
    private readonly kms: KMSClient,
    private readonly keyId: string,
  ) {}

  async newDataKey(app: string, configPath: string | undefined) {
    const dataKey = randomBytes(32);
    const context = configContext(app, configPath);
    try {
      const out = await this.kms.send(
        new (kmsSdk().EncryptCommand)({ KeyId: this.keyId, Plaintext: dataKey, EncryptionContext: context }),
      );
      if (!out.CiphertextBlob || !out.KeyId) throw new AppError('internal', 'KMS Encrypt returned no ciphertext');
      // KMS answers with the key ARN: that, not the alias, is what sops records and calls Decrypt with.
      const entry: KmsEntry = {
        arn: out.KeyId,
        context,
        created_at: rfc3339(new Date()),
        enc: Buffer.from(out.CiphertextBlob).toString('base64'),
        aws_profile: '',
      };
      return { dataKey, keys: { kms: [entry] } };
    } catch (err) {
      throw fromAwsError(
        err,
        `encrypting the data key of configuration ${configPath ?? '(no path)'} with ${this.keyId}`,
      );
    }
  }

  async dataKey(meta: SopsMetadata, app: string, configPath: string | undefined): Promise<Buffer> {
    const entries = meta.kms ?? [];
    if (entries.length === 0)
      throw new AppError(
        'usage',
        'the document has no sops.kms entry: it was not encrypted with KMS (was it made with --local?)',
      );
    const want = configContext(app, configPath);
    const entry = entries.find((e) => sameContext(e.context ?? {}, want));
    if (!entry) {
      const got = entries[0].context ?? {};
      throw new AppError(
        'usage',
        `the document was encrypted for application ${JSON.stringify(got['ecs-secrets:application'] ?? null)} and path ${JSON.stringify(got['ecs-secrets:config'] ?? null)}, not application ${JSON.stringify(app)} and path ${JSON.stringify(configPath ?? null)}`,
        { remedy: 'decrypt it and push the plain file' },
      );
    }
    try {
      const out = await this.kms.send(
        new (kmsSdk().DecryptCommand)({
          CiphertextBlob: Buffer.from(entry.enc, 'base64'),
          EncryptionContext: entry.context,
          // The application's key, not the ARN the document names: a document wrapped under
          // another key is IncorrectKeyException, an integrity error.
          KeyId: this.keyId,
        }),
      );
      if (out.Plaintext?.length !== 32)
        throw new AppError('integrity', 'integrity check failed: KMS returned a data key of the wrong size');
      return Buffer.from(out.Plaintext);
    } catch (err) {
      throw fromAwsError(err, `decrypting the data key of configuration ${configPath ?? '(no path)'}`);
    }
  }
}

function sameContext(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

type AgeModule = typeof import('age-encryption');

/**
 * age (X25519) for `--local`, through the age-encryption library (typage, by age's author). It is
 * an ES module; Node 20.19+ loads it with require(), which the CommonJS build emits for import().
 * The identity lives in the data dir with mode 0600; a readable one is refused, as ssh does.
 */
export class AgeConfigKeys implements ConfigKeySource {
  constructor(private readonly dataDir: string) {}

  async newDataKey() {
    const age = await loadAge();
    const identity = await this.identity(age);
    const recipient = await age.identityToRecipient(identity);
    const dataKey = randomBytes(32);
    const e = new age.Encrypter();
    e.addRecipient(recipient);
    const enc = age.armor.encode(await e.encrypt(dataKey));
    return { dataKey, keys: { age: [{ recipient, enc }] } };
  }

  async dataKey(meta: SopsMetadata): Promise<Buffer> {
    const entries = meta.age ?? [];
    if (entries.length === 0)
      throw new AppError(
        'usage',
        'the document has no sops.age entry: it was not encrypted with --local (was it made with KMS?)',
      );
    // Every identity we hold (the environment's and the data dir's), never a new one: decrypt creates no keys.
    const age = await loadAge();
    const identities = ageIdentities(this.dataDir);
    const mine = await Promise.all(identities.map((i) => age.identityToRecipient(i)));
    const entry = entries.find((e) => mine.includes(e.recipient));
    if (!entry)
      throw new AppError(
        'access_denied',
        `the document was encrypted for age recipient ${entries.map((e) => e.recipient).join(', ')}, and no identity here (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, the data dir's age.key) matches`,
      );
    try {
      const d = new age.Decrypter();
      for (const identity of identities) d.addIdentity(identity);
      const key = Buffer.from(await d.decrypt(age.armor.decode(entry.enc)));
      if (key.length !== 32) throw new Error('size');
      return key;
    } catch {
      throw new AppError(
        'integrity',
        `integrity check failed: the sops.age entry for ${entry.recipient} could not be decrypted with its identity`,
      );
    }
  }

  /** The identity file, created on first use, held to the master key's rules (core/private-files.ts). */
  private async identity(age: AgeModule): Promise<string> {
    const file = path.join(this.dataDir, AGE_IDENTITY_FILE);
    // Generated before the (synchronous) create-once: only when the file is missing, and a
    // process that loses the race to link it in uses the winner's identity.
    const fresh = fs.existsSync(file) ? undefined : await age.generateX25519Identity();
    const text = readOrCreatePrivateFile(
      file,
      'age identity',
      () => `# created by ecs-secrets for config documents (sops age)\n${fresh}\n`,
    ).toString('utf8');
    const line = text.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'));
    if (!line) throw new AppError('integrity', `age identity ${file} holds no AGE-SECRET-KEY line`);
    return line.trim();
  }
}

function loadAge(): Promise<AgeModule> {
  return import('age-encryption');
}
