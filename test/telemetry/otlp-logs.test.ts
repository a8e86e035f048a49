/**
 * Logs over OTLP (OTEL_LOGS_EXPORTER=otlp) from the compiled CLI: the pino
 * records reach the receiver as OTel log records (severity, body, attributes,
 * the resource) through @opentelemetry/instrumentation-pino's log sending; a
 * state change carries the trace and span id of the run span that caused it,
 * a span the same receiver got; stdout JSON is unchanged; SIGTERM flushes the
 * last records ("stopped") before the process exits.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedLogRecord } from '../helpers/otlp-receiver';
import { freePort, startHttpServer, type TestHttpServer } from '../helpers/servers';
import { startCli, type CliProcess } from './support';
import { ensureBuilt } from '../helpers/paths';

/** OTLP SeverityNumber */
const SEVERITY = { info: 9, warn: 13 } as const;

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  describe(`OTLP logs (${protocol}): pino records as OTel log records, correlated with the run`, () => {
    let receiver: OtlpReceiver;
    let web: TestHttpServer;
    let cli: CliProcess | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null };
    const body = (text: string) => (r: ReceivedLogRecord) => r.body === text;

    before(async () => {
      ensureBuilt();
      receiver = await startOtlpReceiver();
      web = await startHttpServer((_req, res) => res.writeHead(200).end('ok'));
      const closedPort = await freePort();
      cli = await startCli(
        `
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms }
telemetry: { serviceName: otlp-logs-test }
defaults: { interval: 1h, timeout: 500ms, retry: { attempts: 1 } }
checks:
  - { name: web, kind: http, url: "${web.url}/" }
  - { name: gone, kind: tcp, url: "tcp://127.0.0.1:${closedPort}", critical: false, breaker: { failures: 1, halfOpenAfter: 1h } }
`,
        {
          OTEL_LOGS_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: protocol,
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_BLRP_SCHEDULE_DELAY: '100',
          OTEL_BSP_SCHEDULE_DELAY: '100',
        },
      );
      await receiver.until(
        () => receiver.logs.some(body('check gone UNKNOWN → DOWN')) && receiver.logs.some(body('check web UNKNOWN → UP')) && receiver.spans.some((s) => s.name === 'healthcheck gone'),
        'the state-change records and the run span of gone',
      );
      exit = await cli.stop('SIGTERM');
    });

    after(async () => {
      cli?.kill();
      await receiver?.close();
      await web?.close();
    });

    it('decodes every request without errors; the records are on the logs path in the protocol asked for', () => {
      assert.deepEqual(receiver.errors, []);
      const logRequests = receiver.requests.filter((r) => r.path === '/v1/logs');
      assert.ok(logRequests.length >= 1);
      assert.ok(logRequests.every((r) => r.contentType === (protocol === 'http/json' ? 'application/json' : 'application/x-protobuf')));
    });

    it('a state change: severity, body, attributes, and the trace and span id of the run span that caused it', () => {
      const record = receiver.logs.find(body('check gone UNKNOWN → DOWN'))!;
      assert.equal(record.severityNumber, SEVERITY.warn);
      assert.equal(record.severityText, 'warn');
      assert.deepEqual(
        { check: record.attributes.check, kind: record.attributes.kind, from: record.attributes.from, to: record.attributes.to },
        { check: 'gone', kind: 'tcp', from: 'UNKNOWN', to: 'DOWN' },
      );
      assert.match(String(record.attributes.reason), /refused/);
      const run = receiver.spans.find((s) => s.traceId === record.traceId && s.spanId === record.spanId);
      assert.ok(run, `no span ${record.traceId}/${record.spanId} among ${receiver.spans.length} received`);
      assert.equal(run.name, 'healthcheck gone');
      assert.equal(run.parentSpanId, '', 'the run span (a root)');
      // trace ids are fields of the record, not attributes
      assert.ok(!('trace_id' in record.attributes) && !('span_id' in record.attributes));
    });

    it('the breaker opening is logged inside the run: a span of the run trace', () => {
      const record = receiver.logs.find(body('breaker of gone is open'))!;
      assert.ok(record, receiver.logs.map((r) => r.body).join('\n'));
      const run = receiver.spans.find((s) => s.name === 'healthcheck gone' && s.traceId === record.traceId);
      assert.ok(run, 'the breaker record belongs to a run trace the receiver got');
      assert.ok(receiver.spans.some((s) => s.spanId === record.spanId && s.traceId === run.traceId), 'its span is a span of that run');
    });

    it('records outside a run: info severity, no trace id, the resource of the other signals', () => {
      const listening = receiver.logs.find((r) => typeof r.body === 'string' && r.body.startsWith('listening on'))!;
      assert.equal(listening.severityNumber, SEVERITY.info);
      assert.equal(listening.traceId, '');
      assert.equal(listening.attributes.port, cli!.port);
      assert.equal(listening.resource['service.name'], 'otlp-logs-test');
      assert.equal(listening.scope.name, '@opentelemetry/instrumentation-pino');
      const span = receiver.spans[0]!;
      assert.deepEqual(listening.resource, span.resource);
    });

    it('stdout JSON stays as it was, with the same trace_id on the state-change line', () => {
      const records = cli!.records();
      const line = records.find((r) => r.msg === 'check gone UNKNOWN → DOWN')!;
      const otlp = receiver.logs.find(body('check gone UNKNOWN → DOWN'))!;
      assert.deepEqual({ level: line.level, trace_id: line.trace_id, span_id: line.span_id, service: line.service }, { level: 'warn', trace_id: otlp.traceId, span_id: otlp.spanId, service: 'otel-health-sidecar' });
      // every stdout line from the one announcing the log pipeline up to "stopped" made it over OTLP too
      const bodies = new Set(receiver.logs.map((r) => r.body));
      const from = records.findIndex((r) => typeof r.msg === 'string' && r.msg.startsWith('logs: OTLP'));
      assert.ok(from >= 0);
      const missing = records.slice(from).map((r) => r.msg).filter((msg) => !bodies.has(msg as string));
      assert.deepEqual(missing, []);
    });

    it('SIGTERM: the last record ("stopped") was flushed before a clean exit', () => {
      assert.deepEqual(exit, { ...exit, code: 0, signal: null });
      assert.ok(receiver.logs.some(body('stopped')));
    });
  });
}

describe('OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: longer attribute values of log records and spans are cut; stdout keeps them whole', () => {
  const LIMIT = 12;
  const NAME = 'a-check-with-a-long-name';
  let receiver: OtlpReceiver;
  let cli: CliProcess | undefined;

  before(async () => {
    ensureBuilt();
    receiver = await startOtlpReceiver();
    const closedPort = await freePort();
    cli = await startCli(
      `
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms }
defaults: { interval: 1h, timeout: 500ms, retry: { attempts: 1 } }
checks:
  - { name: ${NAME}, kind: tcp, url: "tcp://127.0.0.1:${closedPort}" }
`,
      { OTEL_LOGS_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: String(LIMIT), OTEL_BLRP_SCHEDULE_DELAY: '100', OTEL_BSP_SCHEDULE_DELAY: '100' },
    );
    await receiver.until(() => receiver.logs.some((r) => r.body === `check ${NAME} UNKNOWN → DOWN`) && receiver.spans.some((s) => s.name === `healthcheck ${NAME}`), 'the state change and its run span');
    await cli.stop('SIGTERM');
  });

  after(async () => {
    cli?.kill();
    await receiver?.close();
  });

  it(`a log record attribute and a span attribute longer than ${LIMIT} characters arrive cut to ${LIMIT}; the body and stdout are whole`, () => {
    const record = receiver.logs.find((r) => r.body === `check ${NAME} UNKNOWN → DOWN`)!;
    assert.equal(record.attributes.check, NAME.slice(0, LIMIT));
    assert.equal(record.attributes.to, 'DOWN');
    const span = receiver.spans.find((s) => s.name === `healthcheck ${NAME}`)!;
    assert.equal(span.attributes['healthcheck.name'], NAME.slice(0, LIMIT));
    const line = cli!.records().find((r) => r.msg === `check ${NAME} UNKNOWN → DOWN`)!;
    assert.equal(line.check, NAME);
  });
});
