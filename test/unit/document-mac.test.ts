/**
 * The stored document's MAC (config/document-mac.ts): known answers computed independently (RFC 5869
 * HKDF written out with Python's hmac module), so the derivation and the message layout cannot
 * drift without this failing.
 */
import { DOCUMENT_MAC_INFO, documentMac, documentMacKey, documentMacMatches } from '../../src/config/document-mac';

const DATA_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const NAME = 'config/team-a/api';
const TEXT = 'plain: hello\nsecret_ecs_secret: ENC[AES256_GCM,data:abc,iv:def,tag:ghi,type:str]\n';

test('the MAC key is HKDF-SHA256 of the data key, no salt, the fixed label (known answer)', () => {
  expect(DOCUMENT_MAC_INFO).toBe('ecs-secrets document mac v1');
  expect(documentMacKey(DATA_KEY).toString('hex')).toBe(
    'e175d935286191b1eb17b7d294fc8a04355b1092154a3906674a49803e6848da',
  );
});

test('the MAC is HMAC-SHA256 over the name, a newline and the stored text (known answer)', () => {
  expect(documentMac(DATA_KEY, NAME, TEXT)).toBe('3883312337d655f0cfd36fed171e0f627160b0217f6e6fbc450a417236270732');
});

test('any change to the text, the name or the key fails the check', () => {
  const mac = documentMac(DATA_KEY, NAME, TEXT);
  expect(documentMacMatches(DATA_KEY, NAME, TEXT, mac)).toBe(true);
  expect(documentMacMatches(DATA_KEY, NAME, TEXT.replace('hello', 'hellx'), mac)).toBe(false);
  expect(documentMacMatches(DATA_KEY, 'config/team-a/other', TEXT, mac)).toBe(false);
  const other = Buffer.from(DATA_KEY);
  other[0] ^= 1;
  expect(documentMacMatches(other, NAME, TEXT, mac)).toBe(false);
  expect(documentMacMatches(DATA_KEY, NAME, TEXT, mac.slice(1))).toBe(false);
});
