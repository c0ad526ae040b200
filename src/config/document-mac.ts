/**
 * The table's own MAC of a stored configuration document (item attribute `DocumentMac`).
 *
 * The SOPS MAC hashes a document's values in order, not its structure: swapping two plain keys,
 * adding null keys or wrapping a value in a list all keep it valid, in real sops too, so files stay
 * sops-compatible and that is left alone. What the table stores is bound here instead: an
 * HMAC-SHA256 over the item's name and the whole stored (encrypted) document text, under a key
 * derived from the document's data key with HKDF-SHA256 and a fixed label. Whoever can write the
 * table but cannot unwrap the data key (KMS, or the local age identity) cannot make a MAC for an
 * altered document. It lives in the item, beside the document, never in the sops block: a file
 * taken out of the table keeps exactly the sops format.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** HKDF's info label: this key is for this MAC only, never the data key's other uses. */
export const DOCUMENT_MAC_INFO = 'ecs-secrets document mac v1';

/** The MAC key: HKDF-SHA256(data key, no salt, DOCUMENT_MAC_INFO), 32 bytes. */
export function documentMacKey(dataKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), DOCUMENT_MAC_INFO, 32));
}

/** The MAC of an item's document (hex): over `name`, a newline, and the stored text, as UTF-8. */
export function documentMac(dataKey: Buffer, name: string, text: string): string {
  const key = documentMacKey(dataKey);
  try {
    return createHmac('sha256', key).update(`${name}\n`, 'utf8').update(text, 'utf8').digest('hex');
  } finally {
    key.fill(0);
  }
}

/** Whether `mac` is the document's MAC (constant-time). */
export function documentMacMatches(dataKey: Buffer, name: string, text: string, mac: string): boolean {
  const expected = Buffer.from(documentMac(dataKey, name, text));
  const given = Buffer.from(mac);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
