import type pg from 'pg';
import { z } from 'zod';
import { commonCheck, urlWithSchemes } from '../config/schema';
import { urlSecrets } from '../config/secrets';
import type { KindCheckConfig } from '../config/types';
import { ProbeFailure } from '../errors';
import { abortable, errorMessage, hardClose, isStaleConnectionError, type Probe, type ProbeContext, type ProbeKind } from './probe';
import { checkPostgresReplication } from './replication';

const schema = z.strictObject({
  ...commonCheck,
  kind: z.literal('postgres'),
  url: urlWithSchemes(['postgres', 'postgresql']),
  query: z.string().min(1).default('SELECT 1'),
  expectPrimary: z.boolean().optional().describe('true: fail on a standby (pg_is_in_recovery()); false: fail on a primary'),
  maxReplicationLagSeconds: z
    .number()
    .min(0)
    .optional()
    .describe('on a standby: fail when now() - pg_last_xact_replay_timestamp() exceeds this (0 when all received WAL is replayed)'),
}).superRefine((check, ctx) => {
  if (check.expectPrimary === true && check.maxReplicationLagSeconds !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['maxReplicationLagSeconds'], message: 'applies only to a standby (expectPrimary: true has no replication lag)' });
  }
});

export type PostgresCheckConfig = KindCheckConfig<typeof schema>;

const target = (check: PostgresCheckConfig) => {
  const url = new URL(check.url);
  return `postgres ${url.hostname}:${url.port || '5432'}`;
};

/** SQLSTATE class 28 = invalid authorization specification (bad password, unknown role, pg_hba refusal). */
const AUTH_SQLSTATE = /^28/;

/**
 * postgres:// — runs `query` (default SELECT 1) on one kept connection, with
 * connectionTimeoutMillis, statement_timeout and query_timeout bounded by the
 * check timeout (statement_timeout makes the server itself give up on a slow
 * query). A connection that timed out is reset (RST: the backend notices at
 * once) and the next run connects afresh. A kept connection found dead at the
 * start of a run (closed by the server while idle) is replaced once within
 * the same attempt.
 */
function createPostgresProbe(check: PostgresCheckConfig, context: ProbeContext): Probe {
  // the driver loads with the first postgres check, not with the sidecar
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Client } = require('pg') as typeof import('pg');
  const where = target(check);
  let client: pg.Client | undefined;

  function socketOf(target: pg.Client) {
    return (target as unknown as { connection?: { stream?: import('node:net').Socket } }).connection?.stream;
  }

  function destroy(target: pg.Client | undefined) {
    if (!target) return;
    if (client === target) client = undefined;
    target.removeAllListeners('end');
    // end() waits for the server to close; a hung server never does, so reset the socket.
    hardClose(socketOf(target));
    target.end().catch(() => undefined);
  }

  async function open(signal: AbortSignal): Promise<pg.Client> {
    const fresh = new Client({
      connectionString: check.url,
      connectionTimeoutMillis: check.timeout,
      statement_timeout: check.timeout,
      query_timeout: check.timeout,
      // identifiable in pg_stat_activity (one backend per check)
      application_name: `otel-health-sidecar:${check.name}`,
      keepAlive: true,
    });
    let connected = false;
    fresh.on('error', () => {
      // The server went away: pg reports an unexpected end as 'error' first, and destroy()
      // removes the 'end' listener below, so the loss is reported from here.
      const kept = connected && client === fresh;
      destroy(fresh);
      if (kept) context.onConnectionLost?.('postgres connection lost');
    });
    client = fresh;
    try {
      await abortable(fresh.connect(), signal, () => destroy(fresh));
    } catch (err) {
      destroy(fresh);
      throw err;
    }
    connected = true;
    fresh.once('end', () => {
      if (client === fresh) {
        client = undefined;
        context.onConnectionLost?.('postgres connection closed');
      }
    });
    return fresh;
  }

  async function query(active: pg.Client, signal: AbortSignal): Promise<pg.QueryArrayResult> {
    return abortable(active.query({ text: check.query, rowMode: 'array' }), signal, () => destroy(active));
  }

  return {
    async run(signal) {
      let result: pg.QueryArrayResult;
      try {
        const kept = client;
        try {
          result = await query(kept ?? (await open(signal)), signal);
        } catch (err) {
          if (!kept || signal.aborted || !isStaleConnectionError(err)) throw err;
          destroy(kept);
          result = await query(await open(signal), signal);
        }
      } catch (err) {
        if (signal.aborted) throw err;
        destroy(client);
        const code = (err as { code?: string }).code ?? '';
        const message = errorMessage(err);
        throw new ProbeFailure('POSTGRES_FAILED', context.redactor.text(`${where}: ${AUTH_SQLSTATE.test(code) ? `authentication failed (${message})` : message}`));
      }
      const message = context.redactor.text(`${check.query.slice(0, 40)}: ${result.rowCount ?? 0} row(s)`);
      if (check.expectPrimary !== undefined || check.maxReplicationLagSeconds !== undefined) {
        // primary/standby and replay lag on the same connection (see replication.ts)
        const active = client;
        if (!active) throw new ProbeFailure('POSTGRES_FAILED', `${where}: connection closed before the replication query`);
        return checkPostgresReplication(active, signal, check, where, message, context.redactor, () => destroy(active));
      }
      return { ok: true, message };
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

export const postgresKind: ProbeKind<PostgresCheckConfig> = {
  kind: 'postgres',
  schema,
  create: createPostgresProbe,
  targetField: 'url',
  placeholder: 'postgres://unset.invalid:1',
  target,
  secrets: (check) => urlSecrets(check.url),
  redact: (check, redactor) => ({ ...check, url: redactor.url(check.url) }),
};
