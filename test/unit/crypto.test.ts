import { aadV2, openLegacy, openV2, seal, sealV2 } from '../../src/core/crypto';
import { AppError } from '../../src/core/errors';

const key = Buffer.alloc(32, 7);
const addr = { app: 'shop', name: 'db.password', serial: 3 };

function expectIntegrity(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(AppError);
  expect((caught as AppError).kind).toBe('integrity');
  expect((caught as AppError).message).toMatch(/integrity check failed/);
}

describe('legacy layout (the original: cryptopasta gcm.Seal(nonce, nonce, plaintext, nil))', () => {
  // NIST GCM test case 15 (AES-256, 96-bit IV, no AAD): an answer computed outside this project.
  const nistKey = Buffer.from('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308', 'hex');
  const nonce = Buffer.from('cafebabefacedbaddecaf888', 'hex');
  const plaintext = Buffer.from(
    'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255',
    'hex',
  );
  const ciphertext = Buffer.from(
    '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad',
    'hex',
  );
  const tag = Buffer.from('b094dac5d93471bdec1a502270e3cc6c', 'hex');
  const blob = Buffer.concat([nonce, ciphertext, tag]).toString('base64');

  test('known answer: nonce || ciphertext || tag opens to the plaintext', () => {
    expect(openLegacy(nistKey, blob, 'x').equals(plaintext)).toBe(true);
  });

  test('a legacy blob does not open as format 2 (format 2 binds an AAD)', () => {
    expectIntegrity(() => openV2(nistKey, blob, addr));
  });
});

describe('format 2', () => {
  const sealed = sealV2(key, Buffer.from('hunter2'), addr);

  test('round trip, with a fresh nonce each time', () => {
    expect(openV2(key, sealed, addr).toString()).toBe('hunter2');
    expect(sealV2(key, Buffer.from('hunter2'), addr)).not.toBe(sealed);
    expect(Buffer.from(sealed, 'base64').length).toBe(12 + 7 + 16);
  });

  test('the AAD names the application, secret and serial', () => {
    expect(aadV2(addr).toString()).toBe('ecs-secrets:v2\0shop\0db.password\x003');
  });

  test.each([
    ['another serial', { ...addr, serial: 4 }],
    ['another name', { ...addr, name: 'db.password2' }],
    ['another application', { ...addr, app: 'shop2' }],
  ])('a record moved to %s fails to open', (_label, moved) => {
    expectIntegrity(() => openV2(key, sealed, moved));
  });

  test('a flipped byte anywhere fails', () => {
    const raw = Buffer.from(sealed, 'base64');
    for (let i = 0; i < raw.length; i++) {
      const bad = Buffer.from(raw);
      bad[i] ^= 0x01;
      expectIntegrity(() => openV2(key, bad.toString('base64'), addr));
    }
  });

  test('a wrong data key fails', () => {
    expectIntegrity(() => openV2(Buffer.alloc(32, 8), sealed, addr));
  });

  test('a truncated blob fails', () => {
    const raw = Buffer.from(sealed, 'base64');
    for (const len of [0, 5, 27, raw.length - 1])
      expectIntegrity(() => openV2(key, raw.subarray(0, len).toString('base64'), addr));
  });

  test('a key of the wrong size is refused', () => {
    expectIntegrity(() => openV2(Buffer.alloc(16), sealed, addr));
  });

  test('seal with no AAD is the legacy layout', () => {
    const legacy = seal(key, Buffer.from('old'), undefined);
    expect(openLegacy(key, legacy, 'x').toString()).toBe('old');
  });
});
