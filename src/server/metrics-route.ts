/**
 * The `/metrics` route: served on the sidecar's own port, no spans, no
 * per-request log line; it may be shed under overload like every route but
 * the kubelet's. What it serves comes through a port, `MetricsRenderer`:
 * telemetry/metrics.ts implements it (the Prometheus 0.0.4 text, or
 * OpenMetrics with exemplars when the Accept header prefers it), the wiring
 * hands it over, and server/ and telemetry/ never import each other.
 *
 * Single flight (issue 14.2): a scrape that arrives while a collection of
 * its format is being rendered joins it instead of starting another, and the
 * body is gzipped at most once for all of them. Nothing is kept after the
 * render ends: a scrape never sees values older than its own request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Router } from './app';
import { unauthorized } from './auth';
import { SharedBody } from './encoding';
import { send, sendText } from './respond';

/** One text format of the metrics; `name` identifies it (concurrent scrapes of one name share a render). */
export interface MetricsFormat {
  readonly name: string;
  readonly contentType: string;
}

/** What renders the metrics (telemetry implements it). */
export interface MetricsRenderer {
  /** the format an Accept header asks for */
  negotiate(accept: string | string[] | undefined): MetricsFormat;
  /** one collection, serialised in that format */
  render(format: MetricsFormat): Promise<string>;
}

/** The route's handler: single flight per format, one gzip per render, a 500 when the collection fails. */
export function metricsHandler(renderer: MetricsRenderer, logger: Logger) {
  const inFlight = new Map<string, Promise<SharedBody>>();
  const render = (format: MetricsFormat): Promise<SharedBody> => {
    let pending = inFlight.get(format.name);
    if (pending === undefined) {
      pending = renderer
        .render(format)
        .then((text) => new SharedBody(Buffer.from(text)))
        .finally(() => inFlight.delete(format.name));
      inFlight.set(format.name, pending);
    }
    return pending;
  };
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const format = renderer.negotiate(req.headers.accept);
      const body = await render(format);
      send(req, res, 200, body.payload, format.contentType, { vary: 'Accept' }, { gzip: body.gzip });
    } catch (err) {
      logger.error({ err }, 'metrics collection failed');
      sendText(req, res, 500, `# metrics collection failed\n`);
    }
  };
}

export interface MetricsEndpoint {
  renderer: MetricsRenderer;
  /** telemetry.prometheus.path */
  path: string;
  /** telemetry.prometheus.requireKey: scrapes need a valid key (the loader makes sure one exists) */
  requireKey: boolean;
  logger: Logger;
}

export function registerMetricsRoute(router: Router, endpoint: MetricsEndpoint): void {
  const handler = metricsHandler(endpoint.renderer, endpoint.logger);
  router.add(
    endpoint.path,
    ['GET'],
    endpoint.requireKey
      ? (req, res, ctx) => {
          if (ctx.identity.kind !== 'key') throw unauthorized(ctx.identity);
          return handler(req, res);
        }
      : handler,
  );
}
