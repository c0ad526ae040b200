/**
 * Files written by the real sops (age and PGP, 3.5 to 3.13, every rule) decrypt, MAC checked, to
 * the plaintext their source repositories say. The PGP files' data keys come from
 * pgp-datakeys.json (derived once with gpg): ecs-secrets does not read PGP, but the MAC and value
 * paths are the same.
 */
import * as fs from 'node:fs';
import { decryptDocument, parseConfig } from '../../src/config/sops';
import { hasSopsReal, sopsReal, sopsRealManifest } from '../helpers/peers';

const files = sopsRealManifest();
const suite = hasSopsReal ? describe : describe.skip;

/** PGP files only here: age (an ES module) runs in the CLI, test/e2e/config-sops-real.test.ts. */
const pgpFiles = files.filter((f) => f.key === 'pgp');

function dataKeyOf(entry: (typeof files)[number]): Buffer {
  const keys = JSON.parse(fs.readFileSync(sopsReal('pgp-datakeys.json'), 'utf8'));
  return Buffer.from(keys[entry.file], 'hex');
}

suite('real sops files', () => {
  test.each(pgpFiles.map((f) => [f.file, f] as const))('%s decrypts, MAC checked, to its plaintext', (_n, entry) => {
    const text = fs.readFileSync(sopsReal('real', entry.file), 'utf8');
    const cd = parseConfig(text, entry.format);
    decryptDocument(cd, dataKeyOf(entry));
    if (entry.expected?.endsWith('.json'))
      expect(cd.doc.toJSON()).toEqual(JSON.parse(fs.readFileSync(sopsReal('expected', entry.expected), 'utf8')));
    else if (entry.expected)
      expect(cd.doc.toJSON()).toEqual(
        parseConfig(fs.readFileSync(sopsReal('expected', entry.expected), 'utf8')).doc.toJSON(),
      );
    for (const c of entry.expectedComments ?? []) expect(cd.doc.toString()).toContain(`#${c}\n`);
  });

  test('a changed plain value in a real file is an integrity error (every value is in the MAC)', () => {
    const entry = pgpFiles.find((f) => f.file === 'sops-example.yaml')!;
    const text = fs.readFileSync(sopsReal('real', entry.file), 'utf8');
    const changed = text.replace('- because of the _unencrypted suffix', '- because of the suffix');
    expect(changed).not.toBe(text);
    const cd = parseConfig(changed);
    expect(() => decryptDocument(cd, dataKeyOf(entry))).toThrow(/MAC does not match/);
  });
});
