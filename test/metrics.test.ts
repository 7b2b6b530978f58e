import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsRegistry, seriesBy } from '../src/common/metrics.js';

test('metrics render counters and gauges in Prometheus text format', () => {
  const m = new MetricsRegistry('t_');
  const c = m.counter('writes_total', 'Writes.');
  c.inc({ backend: 'sqlite' });
  c.inc({ backend: 'sqlite' }, 2);
  const g = m.gauge('queue_depth', 'Queue "depth"\nnow.');
  g.collect(() => 7);
  const text = m.render();
  assert.match(text, /^# TYPE t_writes_total counter$/m);
  assert.match(text, /^t_writes_total\{backend="sqlite"\} 3$/m);
  assert.match(text, /^# HELP t_queue_depth Queue "depth"\\nnow\.$/m);
  assert.match(text, /^t_queue_depth 7$/m);
  assert.equal(m.counter('writes_total', 'Writes.'), c);
  assert.throws(() => m.gauge('writes_total', 'x'), /already registered/);
  assert.throws(() => c.inc({}, -1), /cannot decrease/);
});

test('seriesBy: a series made on first use counts into the same series as inc(labels)', () => {
  const m = new MetricsRegistry('t_');
  const c = m.counter('ops_total', 'Ops.');
  const ok = seriesBy(c, (op: string) => ({ result: 'ok', op }));
  assert.doesNotMatch(m.render(), /t_ops_total\{/); // nothing made before it is counted
  ok('get').inc();
  ok('get').inc(2);
  c.inc({ op: 'get', result: 'ok' });
  assert.equal(ok('get'), ok('get'));
  assert.equal(c.get({ op: 'get', result: 'ok' }), 4);
  assert.doesNotMatch(m.render(), /op="put"/);
  assert.match(m.render(), /^t_ops_total\{op="get",result="ok"\} 4$/m);
  assert.throws(() => ok('get').inc(-1), /cannot decrease/);
});
