/**
 * Longest suites first, so that no worker is left running one long suite alone at the end. Jest
 * does this itself from the durations it cached in an earlier run, but a fresh clone (CI) has none
 * and jest then orders by file size, which put the bench's short run (a small file, two minutes)
 * last. test/suite-seconds.json holds the seconds each suite took in a full run; a suite it does
 * not list runs first (jest puts suites with no duration first), ordered by size. Regenerate it
 * when suites change much: `npx jest --json --outputFile=r.json`, each suite's endTime - startTime.
 */
const path = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;
const seconds = require('./suite-seconds.json');

const root = path.join(__dirname, '..');

class LongestFirst extends Sequencer {
  time(test) {
    return super.time(test) ?? estimate(test.path);
  }
}

function estimate(file) {
  const s = seconds[path.relative(root, file)];
  return s === undefined ? undefined : s * 1000;
}

module.exports = LongestFirst;
