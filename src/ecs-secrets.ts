/**
 * The CLI, bundled into one file (dist/src/ecs-secrets.js) that the executable (cli.ts) loads: runs
 * the command line (cli/main.ts) and exits with its code once stdout has drained.
 */
import { main } from './cli/main';

main(process.argv.slice(2)).then((code) => {
  // Let stdout drain before exiting: a piped `fetch` result must not be cut short.
  process.stdout.write('', () => process.exit(code));
});
