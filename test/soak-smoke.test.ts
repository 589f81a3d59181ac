// The soak's machinery (bench/soak.ts), run briefly so it cannot rot: its own PostgreSQL, Redis, three replicas in
// jwt mode and nginx, 8 SDK clients of mixed identities for 12 s, one replica SIGKILLed along the way (left down: a
// restart takes 20–30 s on this machine). Every answer is checked against its identity's ground truth; only calls
// in flight at the kill may fail, with nginx's 502; and everything the soak started is stopped when it returns.
// The figures themselves come from the full run (npm run bench:soak) and are in BENCHMARKS.md, not asserted here.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { REQUIRE_SERVICES, serverUnavailableReason } from './support/databases.js';
import { NGINX_MISSING } from './support/nginx.js';
import { KILLED_SLOT, formatReport, runSoak } from '../bench/soak.js';

const skip = (await serverUnavailableReason()) ?? (NGINX_MISSING && !REQUIRE_SERVICES ? 'nginx is not installed (Debian package nginx)' : false);

describe('the soak, briefly (bench/soak.ts)', { skip }, () => {
  test('mixed identities through nginx, a replica killed: no wrong answer, only in-flight calls fail, all stopped after', { timeout: 150_000 }, async () => {
    const log: string[] = [];
    const report = await runSoak({
      seconds: 12,
      clients: 8,
      thinkMs: 50,
      faults: ['replica-kill'],
      standby: false,
      rssSampleMs: 1000,
      heapSampleMs: 2000,
      restartKilled: false,
      log: (line) => log.push(line),
    });
    const text = formatReport(report);
    assert.ok(report.checked >= 30, `answers checked: ${report.checked}\n${text}`);
    assert.equal(report.violations, 0, text);
    assert.deepEqual(report.unexplained, {}, `errors outside the fault: ${text}`);
    assert.ok(report.byKind.length >= 8, 'the mix reaches schemas, SQL, typed tools and search');

    const [kill] = report.faults;
    assert.equal(kill?.fault, 'replica-kill', log.join('\n'));
    const { inFlight, inFlightFailed, startedAfter, failedAfter, lastFailedAfterMs } = kill.figures as Record<string, number>;
    assert.ok(inFlightFailed! <= inFlight!, text);
    // A call sent in the instant of the kill can still meet the dying replica; none later.
    assert.ok(failedAfter === 0 || lastFailedAfterMs! < 1000, `calls started after the kill failed up to ${lastFailedAfterMs} ms later\n${text}`);
    assert.ok(startedAfter! > failedAfter! + 10, 'the two other replicas went on serving');
    assert.deepEqual(Object.keys(kill.outcomes).filter((code) => code !== 'ok'), kill.outcomes.HTTP_502 ? ['HTTP_502'] : [], "a failed call is the balancer's 502");
    for (const [key, message] of Object.entries(report.errorSamples)) {
      if (key.startsWith('HTTP_502 ')) assert.match(message, /replica serving this call stopped or could not be reached/, 'which says what happened');
    }

    assert.equal(report.rss.length, 3);
    assert.ok(report.rss.every((r) => r.samples > 0 && r.lastThirdMb > 20), JSON.stringify(report.rss));
    // The heap probe ran in every thread of each replica that served the whole run: the main one and at least one
    // embedding worker. The killed one lived about 2 s into it, too short for every thread's 2 s timer to land in
    // one sampling round with the main thread's; its probe only has to have run.
    const survivors = report.rss.filter((r) => r.slot !== KILLED_SLOT);
    assert.equal(survivors.length, 2);
    assert.ok(survivors.every((r) => r.liveHeap !== undefined && r.liveHeap.threads >= 2 && r.liveHeap.lastMb > r.liveHeap.lastMainMb), JSON.stringify(report.rss));
    assert.ok(report.rss.every((r) => r.liveHeap !== undefined), JSON.stringify(report.rss));
    // Everything the soak started is stopped: the balancer no longer answers.
    await assert.rejects(fetch(report.endpoint.replace('/mcp', '/health')));
  });
});
