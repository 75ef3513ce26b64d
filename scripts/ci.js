// What the test scripts do under CI (CI=true or CI=1): everything the README's test section promises
// is checked, nothing is left out quietly. A missing tool, model or data set is a failure there (and a
// visible SKIPPED line elsewhere), and the environment variables that leave checks out while developing
// are refused.
'use strict';

const ci = process.env.CI === 'true' || process.env.CI === '1';

// Variables that narrow what `npm test` checks (for local runs only). MNQ_ARM64_NODE=1 (a missing arm64
// Node is a failure) is what CI does anyway.
const NARROWING = [
  'MNQ_SKIP_NATIVE', 'MNQ_SKIP_ASAN', 'MNQ_SKIP_FUZZ', 'MNQ_SKIP_ARM64', 'MNQ_ARM64_NODE', 'MNQ_ARM64_SANITIZE', 'MNQ_ARM64_CPUS',
  'MNQ_ARM64_MODELS', 'MNQ_ARM64_IMAGES', 'MNQ_PARITY_IMAGES', 'MNQ_ORT_X86_DEFAULT', 'MNQ_ISA', 'MNQ_EXECUTOR',
  'MNQ_BAND_KB', 'MNQ_WINDOW_SLACK',
];

/** Under CI, exits 1 naming every narrowing variable that is set (non-empty). */
function refuseNarrowingUnderCi(tag) {
  if (!ci) return;
  const set = NARROWING.filter((v) => process.env[v] !== undefined && process.env[v] !== ''
    && !(v === 'MNQ_ARM64_NODE' && process.env[v] === '1'));
  if (!set.length) return;
  console.error(`[${tag}] FAIL: ${set.map((v) => `${v}=${process.env[v]}`).join(', ')} set under CI=true: these leave `
    + 'checks out of npm test and are for local runs only; unset them');
  process.exit(1);
}

/** Something a check needs is missing: under CI a failure (exit 1), elsewhere a SKIPPED line (and returns). */
function skipOrFail(tag, msg) {
  if (ci) {
    console.error(`[${tag}] FAIL: ${msg} (CI=true: required)`);
    process.exit(1);
  }
  console.log(`[${tag}] SKIPPED: ${msg}`);
}

module.exports = { ci, NARROWING, refuseNarrowingUnderCi, skipOrFail };
