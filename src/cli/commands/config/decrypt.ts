/** `ecs-secrets config decrypt`: a local SOPS file back to plain text, MAC checked; no table involved. */
import { decryptConfigText, wrappedOnlyForAge } from '../../../config/documents-service';
import { defineCommand } from '../../command';
import { readDocument, sourceOf, withConfigKeys, writeDocument } from './document-files';

export const configDecryptCommand = defineCommand<{ file?: string; out?: string }>({
  command: 'decrypt [file]',
  examples: [['$0 config decrypt app.enc.yaml --local', 'a SOPS file back to plain text']],
  describe: 'Decrypt a local SOPS file (MAC checked) to stdout or --out (written with mode 0600)',
  builder: (c) =>
    c
      .positional('file', { type: 'string', describe: 'The encrypted document (- reads standard input)' })
      .option('out', { type: 'string', describe: 'Write here (mode 0600) instead of stdout' }),
  run: async (args, ctx) => {
    const text = await readDocument(sourceOf(args, args.file));
    // A file sops wrote for age recipients only opens with age identities, whether or not --local was given.
    const local = args.local || wrappedOnlyForAge(text);
    const out = await withConfigKeys({ ...args, local }, (keys, app) => decryptConfigText(keys, app, text));
    if (args.out !== undefined) await writeDocument(args.out, out, 0o600);
    else ctx.write(out);
  },
});
