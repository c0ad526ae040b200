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

export type ValueType = 'str' | 'int' | 'float' | 'bool' | 'time' | 'comment';

/** A scalar's plaintext and sops type, the two things the cipher and the MAC need. */
export type Plain =
  | { kind: 'str'; v: string }
  | { kind: 'int'; v: number | bigint }
  | { kind: 'float'; v: number }
  | { kind: 'bool'; v: boolean }
  /** A YAML timestamp, held as Go's time.MarshalText writes it (sops 3.10 and later: type time). */
  | { kind: 'time'; v: string };

export const aadOf = (path: string[]): string => `${path.join(':')}:`;

/** Go's time.RFC3339 for UTC: no fractional seconds (sops -d parses it with exactly that layout). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * A scalar's plaintext and type. In YAML, a plain (unquoted) scalar is read as sops reads it
 * (yaml.v3), not as the YAML 1.2 core schema does: the MAC must hash the same bytes sops hashes.
 */
export function plainOf(s: Scalar, format: 'yaml' | 'json' = 'json'): Plain | undefined {
  const src = (s as { source?: string }).source;
  if (format === 'yaml' && s.type === 'PLAIN' && typeof src === 'string' && typeof s.value !== 'string')
    return resolvePlain(src);
  if (format === 'yaml' && s.type === 'PLAIN' && typeof s.value === 'string') {
    const p = resolvePlain(s.value);
    if (p?.kind !== 'str') return p;
  }
  const v = s.value;
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'boolean') return { kind: 'bool', v };
  if (typeof v === 'number') {
    const isInt =
      Number.isInteger(v) && !(typeof src === 'string' && /[.eE]/.test(src)) && Math.abs(v) <= Number.MAX_SAFE_INTEGER;
    return { kind: isInt ? 'int' : 'float', v };
  }
  return { kind: 'str', v: typeof v === 'string' ? v : String(v) };
}

const GO_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/; // yaml.v3 yamlStyleFloat
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * A plain YAML scalar's text as yaml.v3 resolves it (resolve.go), which is what sops hashes and
 * encrypts: `0755` is octal (493), `1_000` is 1000, `2025-12-31` a timestamp, `1e3` the float
 * 1000, `yes` a string. Undefined for null.
 */
export function resolvePlain(text: string): Plain | undefined {
  if (['', '~', 'null', 'Null', 'NULL'].includes(text)) return undefined;
  if (['true', 'True', 'TRUE'].includes(text)) return { kind: 'bool', v: true };
  if (['false', 'False', 'FALSE'].includes(text)) return { kind: 'bool', v: false };
  if (['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'].includes(text)) return { kind: 'float', v: Infinity };
  if (['-.inf', '-.Inf', '-.INF'].includes(text)) return { kind: 'float', v: -Infinity };
  if (['.nan', '.NaN', '.NAN'].includes(text)) return { kind: 'float', v: Number.NaN };
  if (!/^[-+.0-9]/.test(text)) return { kind: 'str', v: text };
  const time = goTimestamp(text);
  if (time) return { kind: 'time', v: time };
  const plain = text.replace(/_/g, '');
  const int = goParseInt(plain);
  if (int !== undefined && int >= INT64_MIN && int <= UINT64_MAX)
    return { kind: 'int', v: int >= -(2n ** 53n) && int <= 2n ** 53n ? Number(int) : int };
  if (GO_FLOAT.test(plain)) return { kind: 'float', v: Number(plain) };
  return { kind: 'str', v: text };
}

/** Go's strconv.ParseInt(s, 0, 64) syntax: sign, then 0x/0o/0b, a leading 0 (octal), or decimal. */
function goParseInt(s: string): bigint | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const [, sign, digits] = m;
  const body = /^0[0-7]+$/.test(digits) ? `0o${digits.slice(1)}` : digits.toLowerCase();
  const n = BigInt(body);
  return sign === '-' ? -n : n;
}

/** yaml.v3's timestamp forms, written as Go's time.MarshalText writes them (RFC 3339, nanoseconds trimmed). */
function goTimestamp(s: string): string | undefined {
  const m =
    /^(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}))|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d{1,9})?))?$/.exec(
      s,
    );
  if (!m) return undefined;
  const [, y, mo, d] = m;
  const [h = '0', mi = '0', se = '0', frac = '', zone = 'Z'] = m[4] ? m.slice(4, 9) : m.slice(9, 13);
  const date = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se)));
  if (date.getUTCMonth() !== Number(mo) - 1 || date.getUTCDate() !== Number(d) || date.getUTCHours() !== Number(h))
    return undefined;
  if (Number(mi) > 59 || Number(se) > 59) return undefined;
  const two = (x: string) => x.padStart(2, '0');
  const nanos = frac.replace(/0+$/, '');
  const tz = zone === '+00:00' || zone === '-00:00' ? 'Z' : (zone ?? 'Z');
  return `${y}-${two(mo)}-${two(d)}T${two(h)}:${two(mi)}:${two(se)}${nanos === '.' ? '' : nanos}${tz}`;
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest round-tripping digits, never an exponent. */
export function formatFloat(f: number): string {
  if (!Number.isFinite(f)) return Number.isNaN(f) ? 'NaN' : f > 0 ? '+Inf' : '-Inf';
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
    case 'time':
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
    case 'time':
      if (!goTimestamp(text))
        throw new AppError('integrity', `integrity check failed: ${where} holds a malformed time`);
      return { kind: 'time', v: text };
    case 'bool':
      if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return { kind: 'bool', v: true };
      if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return { kind: 'bool', v: false };
      throw new AppError('integrity', `integrity check failed: ${where} holds a malformed bool`);
    default:
      throw new AppError('integrity', `integrity check failed: ${where} has unknown type ${JSON.stringify(type)}`);
  }
}
