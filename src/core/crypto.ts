/**
 * Payload sealing with a data key (the inner half of envelope encryption). Pure functions:
 * the data key comes from a key provider (keys.ts), the sealed blob goes to storage.
 *
 * Format 2 (what we write): AES-256-GCM, random 12-byte nonce, AAD binding the blob to its
 * application, name and serial, stored as base64(nonce || ciphertext || 16-byte tag). Moving an
 * item to another name or serial changes the AAD, so decryption fails instead of returning
 * another secret.
 *
 * Legacy (read only): the original's Go cryptopasta layout, gcm.Seal(nonce, nonce, plaintext, nil):
 * the same byte layout with no AAD.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AppError } from './errors';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export interface RecordAddress {
  app: string;
  name: string;
  serial: number;
}

export function aadV2({ app, name, serial }: RecordAddress): Buffer {
  return Buffer.from(`ecs-secrets:v2\0${app}\0${name}\0${serial}`, 'utf8');
}

/** Seal `plaintext` for the record at `address` (format 2). */
export function sealV2(dataKey: Buffer, plaintext: Buffer, address: RecordAddress): string {
  return seal(dataKey, plaintext, aadV2(address));
}

export function openV2(dataKey: Buffer, sealed: string, address: RecordAddress): Buffer {
  return open(dataKey, sealed, aadV2(address), `${address.name} serial ${address.serial}`);
}

/** Open a record written by the original (no AAD). */
export function openLegacy(dataKey: Buffer, sealed: string, label: string): Buffer {
  return open(dataKey, sealed, undefined, label);
}

/** Exported for tests that build records exactly as the original did. */
export function seal(key: Buffer, plaintext: Buffer, aad: Buffer | undefined): string {
  checkKey(key);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  if (aad) cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
}

function open(key: Buffer, sealed: string, aad: Buffer | undefined, label: string): Buffer {
  checkKey(key);
  const blob = Buffer.from(sealed, 'base64');
  if (blob.length < NONCE_BYTES + TAG_BYTES) throw integrity(label, 'the sealed data is truncated');
  const nonce = blob.subarray(0, NONCE_BYTES);
  const tag = blob.subarray(blob.length - TAG_BYTES);
  const body = blob.subarray(NONCE_BYTES, blob.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    if (aad) decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw integrity(label, 'authentication failed (tampered, moved to another name or serial, or wrong key)');
  }
}

function checkKey(key: Buffer): void {
  if (key.length !== KEY_BYTES)
    throw new AppError(
      'integrity',
      `integrity check failed: the data key has ${key.length} bytes, expected ${KEY_BYTES}`,
    );
}

function integrity(label: string, why: string): AppError {
  return new AppError('integrity', `integrity check failed for ${label}: ${why}`);
}
