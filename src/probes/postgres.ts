import pg from 'pg';
import type { CheckConfigOf } from '../config/types';
import { abortable, errorMessage, type Probe, type ProbeContext } from './probe';

/** SQLSTATE class 28 = invalid authorization specification (bad password, unknown role, pg_hba refusal). */
const AUTH_SQLSTATE = /^28/;

/**
 * postgres:// — runs `query` (default SELECT 1) on one kept connection, with
 * connectionTimeoutMillis, statement_timeout and query_timeout bounded by the
 * check timeout. A connection that timed out is destroyed (socket and all)
 * and the next run connects afresh.
 */
export function createPostgresProbe(check: CheckConfigOf<'postgres'>, context: ProbeContext): Probe {
  let client: pg.Client | undefined;

  function destroy(target: pg.Client | undefined) {
    if (!target) return;
    if (client === target) client = undefined;
    target.removeAllListeners('end');
    // end() waits for the server to close; a black-holed server never does, so cut the socket.
    const stream = (target as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
    stream?.destroy();
    target.end().catch(() => undefined);
  }

  async function open(signal: AbortSignal): Promise<pg.Client> {
    const fresh = new pg.Client({
      connectionString: check.url,
      connectionTimeoutMillis: check.timeout,
      statement_timeout: check.timeout,
      query_timeout: check.timeout,
      application_name: 'otel-health-sidecar',
      keepAlive: true,
    });
    fresh.on('error', () => destroy(fresh)); // server went away between runs
    client = fresh;
    await abortable(fresh.connect(), signal, () => destroy(fresh));
    fresh.once('end', () => {
      if (client === fresh) {
        client = undefined;
        context.onConnectionLost?.('postgres connection closed');
      }
    });
    return fresh;
  }

  return {
    async run(signal) {
      let current = client;
      try {
        current ??= await open(signal);
        const active = current;
        const result = await abortable(active.query({ text: check.query, rowMode: 'array' }), signal, () => destroy(active));
        return { ok: true, message: `${check.query.slice(0, 40)}: ${result.rowCount ?? 0} row(s)` };
      } catch (err) {
        destroy(current ?? client);
        const code = (err as { code?: string }).code ?? '';
        const message = errorMessage(err);
        throw new Error(context.redactor.text(AUTH_SQLSTATE.test(code) ? `authentication failed: ${message}` : message));
      }
    },
    async close() {
      const current = client;
      client = undefined;
      if (current) {
        current.removeAllListeners('end');
        await Promise.race([current.end().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
        destroy(current);
      }
    },
  };
}
