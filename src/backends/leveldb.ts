/**
 * LevelDB for the embedded store: classic-level, and the abstract-level its iterators come from,
 * which embedded.ts gives the `return()` dynalite needs.
 *
 * `npm run build` bundles this module with classic-level's JavaScript into
 * dist/src/vendor/classic-level.js, and the main bundle and dynalite's load that one file for
 * every `classic-level` they require: one copy of abstract-level, so the iterators fixed here are
 * dynalite's, and it loads through the code cache instead of a dozen modules compiled at every
 * `--local` start (docs/performance.md). Only the native addon stays in node_modules/classic-level
 * (scripts/bundle.ts makes the bundle look for it there; the build checks that this module and
 * classic-level resolve the same abstract-level).
 */
export { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';
export { ClassicLevel } from 'classic-level';
