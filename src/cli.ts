#!/usr/bin/env node
/**
 * The `ecs-secrets` executable (package.json "bin", the image's ENTRYPOINT): runs the command line
 * (cli/main.ts) and exits with its code once stdout has drained.
 */
import { main } from './cli/main';

main(process.argv.slice(2)).then((code) => {
  // Let stdout drain before exiting: a piped `fetch` result must not be cut short.
  process.stdout.write('', () => process.exit(code));
});
