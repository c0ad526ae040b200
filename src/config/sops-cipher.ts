/**
 * The SOPS value cipher and MAC (facts from sops' aes/cipher.go and sops.go): AES-256-GCM with a
 * 32-byte IV, values written `ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]`, the AAD a key path;
 * the MAC a SHA-512 over every value's plaintext bytes. Pure code, no document walking.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Scalar } from 'yaml';
import { AppError } from '../core/errors';

const IV_BYTES = 32; // sops: nonceSize = 32, GCM with a non-default nonce size
const TAG_BYTES = 16;
const ENC_RE = /^ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:([a-z0-9]+)\]$/;

export type ValueType = 'str' | 'int' | 'float' | 'bool' | 'comment';

/** A scalar's plaintext and sops type, the two things the cipher and the MAC need. */
export type Plain =
  | { kind: 'str'; v: string }
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'bool'; v: boolean };

export const aadOf = (path: string[]): string => `${path.join(':')}:`;

/** Go's time.RFC3339 for UTC: no fractional seconds (sops -d parses it with exactly that layout). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function plainOf(s: Scalar): Plain | undefined {
  const v = s.value;
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'boolean') return { kind: 'bool', v };
  if (typeof v === 'number') {
    const src = (s as { source?: string }).source;
    const isInt =
      Number.isInteger(v) && !(typeof src === 'string' && /[.eE]/.test(src)) && Math.abs(v) <= Number.MAX_SAFE_INTEGER;
    return { kind: isInt ? 'int' : 'float', v };
  }
  return { kind: 'str', v: typeof v === 'string' ? v : String(v) };
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest round-tripping digits, never an exponent. */
export function formatFloat(f: number): string {
  const s = String(f);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, intPart, frac = '', expStr] = m;
  const digits = intPart + frac;
  const point = intPart.length + Number(expStr);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** The bytes sops hashes for the MAC and encrypts (sops.go ToBytes, aes/cipher.go Encrypt). */
export function macBytes(p: Plain): string {
  switch (p.kind) {
    case 'str':
      return p.v;
    case 'int':
      return String(p.v);
    case 'float':
      return formatFloat(p.v);
    case 'bool':
      return p.v ? 'True' : 'False';
  }
}

/** Encrypt one value as sops does; `iv` only for known-answer tests. Empty strings stay empty. */
export function encryptValue(
  value: string,
  type: ValueType,
  key: Buffer,
  aad: string,
  iv: Buffer = randomBytes(IV_BYTES),
): string {
  if (value === '' && (type === 'str' || type === 'comment')) return '';
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${cipher.getAuthTag().toString('base64')},type:${type}]`;
}

export function isEncryptedValue(v: unknown): v is string {
  return typeof v === 'string' && ENC_RE.test(v);
}

/** Decrypt one ENC[] value; `where` names it in the error (a key path, never a value). */
export function decryptValue(enc: string, key: Buffer, aad: string, where: string): { type: string; text: string } {
  const m = ENC_RE.exec(enc);
  if (!m) throw new AppError('integrity', `integrity check failed: ${where} is not an encrypted value`);
  const [, data, iv, tag, type] = m;
  try {
    const ivBuf = Buffer.from(iv, 'base64');
    if (ivBuf.length === 0) throw new Error('empty iv');
    const d = createDecipheriv('aes-256-gcm', key, ivBuf, { authTagLength: TAG_BYTES });
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(Buffer.from(tag, 'base64'));
    const text = Buffer.concat([d.update(Buffer.from(data, 'base64')), d.final()]).toString('utf8');
    return { type, text };
  } catch {
    throw new AppError(
      'integrity',
      `integrity check failed: ${where} could not be authenticated (tampered, moved, or another data key)`,
    );
  }
}

/** A decrypted value's text read back as its sops type (aes/cipher.go Decrypt). */
export function typedValue(type: string, text: string, where: string): Plain {
  switch (type) {
    case 'str':
    case 'bytes':
    case 'comment':
      return { kind: 'str', v: text };
    case 'int':
    case 'int64':
    case 'float': {
      const n = Number(text);
      if (text.trim() === '' || Number.isNaN(n))
        throw new AppError('integrity', `integrity check failed: ${where} holds a malformed ${type}`);
      return { kind: type === 'float' ? 'float' : 'int', v: n };
    }
    case 'bool':
      if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return { kind: 'bool', v: true };
      if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return { kind: 'bool', v: false };
      throw new AppError('integrity', `integrity check failed: ${where} holds a malformed bool`);
    default:
      throw new AppError('integrity', `integrity check failed: ${where} has unknown type ${JSON.stringify(type)}`);
  }
}
