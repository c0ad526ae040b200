/**
 * What this build is: the commit it was built from and when. `npm run build` stamps the compiled
 * module (scripts/stamp-build.ts) before bundling; an unstamped build (tsc alone) reports these.
 */
export const BUILD_COMMIT: string = 'unknown';
export const BUILD_DATE: string = 'unknown';
