/**
 * instruments.ts deferredCounter: the per-probe counters (healthcheck.probe.attempts,
 * healthcheck.runs) sum their increments per frozen attribute object and hand them to
 * the SDK when a collection starts. A collection sees every add made before it, with
 * the same sums and series as direct adds; an unfrozen attribute set goes straight
 * to the counter; series first seen in one collection keep the order of their first add.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MeterProvider, MetricReader, type CollectionResult } from '@opentelemetry/sdk-metrics';
import { deferredCounter } from '../../src/telemetry/instruments';

class Reader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

/** name → [attribute JSON, value] in the order of the collected data points */
function points(result: CollectionResult, name: string): [string, number][] {
  const metric = result.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  return (metric?.dataPoints ?? []).map((p) => [JSON.stringify(p.attributes), p.value as number]);
}

function setup() {
  const reader = new Reader();
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter('test');
  const hook = meter.createObservableGauge('hook');
  const deferred = meter.createCounter('deferred');
  const direct = meter.createCounter('direct');
  return { reader, provider, counter: deferredCounter(meter, deferred, hook), direct };
}

describe('deferredCounter', () => {
  test('a collection holds every add made before it: the same sums and series order as direct adds', async () => {
    const { reader, provider, counter, direct } = setup();
    const b = Object.freeze({ check: 'b' });
    const a = Object.freeze({ check: 'a' });
    for (const [attributes, value] of [[b, 1], [a, 1], [b, 2], [a, 1]] as const) {
      counter.add(value, attributes);
      direct.add(value, attributes);
    }
    const first = await reader.collect();
    assert.deepEqual(points(first, 'deferred'), [['{"check":"b"}', 3], ['{"check":"a"}', 2]]);
    assert.deepEqual(points(first, 'deferred'), points(first, 'direct'));
    // cumulative: later adds are added to the sums; a collection without adds changes nothing
    counter.add(1, a);
    direct.add(1, a);
    const second = await reader.collect();
    assert.deepEqual(points(second, 'deferred'), [['{"check":"b"}', 3], ['{"check":"a"}', 3]]);
    assert.deepEqual(points(second, 'deferred'), points(second, 'direct'));
    assert.deepEqual(points(await reader.collect(), 'deferred'), points(second, 'deferred'));
    await provider.shutdown();
  });

  test('equal attribute sets in different frozen objects are one series; an unfrozen set is added at once', async () => {
    const { reader, provider, counter } = setup();
    counter.add(1, Object.freeze({ check: 'a' }));
    counter.add(1, Object.freeze({ check: 'a' }));
    counter.add(5, { check: 'c' });
    assert.deepEqual(points(await reader.collect(), 'deferred'), [['{"check":"c"}', 5], ['{"check":"a"}', 2]]);
    await provider.shutdown();
  });
});
