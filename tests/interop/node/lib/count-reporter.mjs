// count-reporter.mjs: a node:test reporter that emits one JSON line of
// counts for run.sh, so the closing line comes from the runner's own events
// rather than from scraping the human-readable output.
//
// Node 20 reports a test file that crashed or failed to load as a failed
// test named after the file, so such a file counts as one failure. Suites
// (describe) are containers, not tests: only their tests count.
export default async function* countReporter(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, failures: [] };
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    if (data.details?.type === 'suite') continue;
    if (data.skip || data.todo) counts.skipped++;
    else if (event.type === 'test:pass') counts.passed++;
    else {
      counts.failed++;
      counts.failures.push(data.name);
    }
  }
  yield `${JSON.stringify(counts)}\n`;
}
