import type { Socket } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { z } from 'zod';
import { commonCheck, hasPort, tlsSchema, urlWithSchemes } from '../config/schema';
import { urlSecrets } from '../config/secrets';
import type { KindCheckConfig } from '../config/types';
import { ProbeFailure, PROBE_ERROR } from '../errors';
import { abortError, hardClose, type Probe, type ProbeContext, type ProbeKind } from './probe';
import { CertExpiryRegistry, certificateExpiry, minValidityVerdict, type CertExpiry } from './tls-expiry';

const schema = z
  .strictObject({
    ...commonCheck,
    kind: z.literal('grpc'),
    url: urlWithSchemes(['grpc', 'grpcs']).describe('grpc://host:port (plaintext) or grpcs://host[:port] (TLS, port 443 by default)'),
    service: z.string().default('').describe('service name sent in grpc.health.v1.HealthCheckRequest ("" = the whole server)'),
    tls: tlsSchema.optional(),
  })
  .superRefine((check, ctx) => {
    if (check.url.startsWith('grpc://') && !hasPort(check.url)) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'must name a port: grpc://host:port' });
    }
    if (check.url.startsWith('grpc://') && check.tls !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'TLS options need a grpcs:// URL (grpc:// is plaintext)' });
    }
  });

export type GrpcCheckConfig = KindCheckConfig<typeof schema>;

const CHECK_PATH = '/grpc.health.v1.Health/Check';

/**
 * Headroom of the gRPC deadline over the check timeout. The policy's timeout
 * aborts the attempt first (outcome `timeout`); the deadline is what the server
 * is told (grpc-timeout) and a backstop if the probe runs without a policy.
 */
const DEADLINE_HEADROOM_MS = 100;

function endpoint(check: GrpcCheckConfig): { secure: boolean; target: string } {
  const url = new URL(check.url);
  const secure = url.protocol === 'grpcs:';
  return { secure, target: `${url.hostname}:${url.port || (secure ? '443' : '')}` };
}

const target = (check: GrpcCheckConfig) => `grpc ${endpoint(check).target}${check.service ? ` service ${JSON.stringify(check.service)}` : ''}`;

/**
 * @grpc/grpc-js and the health service definition, loaded when a grpc check is
 * created (they are heavy): the driver, the Check method's (de)serialisers, the
 * status codes that mean "the channel is the problem", and credentials that
 * remember their sockets.
 */
function loadDriver() {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const grpcJs = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { service: healthService } = require('grpc-health-check') as typeof import('grpc-health-check');
  const checkMethod = healthService.Check as unknown as {
    requestSerialize: (value: { service: string }) => Buffer;
    responseDeserialize: (bytes: Buffer) => { status: string };
  };
  /** Status codes that say "the channel/connection is the problem": the next run starts a fresh channel. */
  const transportCodes = new Set([grpcJs.status.UNAVAILABLE, grpcJs.status.DEADLINE_EXCEEDED, grpcJs.status.CANCELLED, grpcJs.status.INTERNAL, grpcJs.status.UNKNOWN]);

  /**
   * Channel credentials that remember the TCP sockets their channel opened.
   * grpc-js has no handshake timeout and closes a connection gracefully (GOAWAY,
   * then wait), so a connection to a black-holed server would stay open after
   * the channel is closed; one per timed-out run. Dropping a channel therefore
   * also resets its sockets. (`_createSecureConnector` is the documented
   * abstract member of grpc-js ChannelCredentials.)
   */
  class SocketTrackingCredentials extends grpcJs.ChannelCredentials {
    private readonly sockets = new Set<Socket>();

    constructor(private readonly inner: grpc.ChannelCredentials) {
      super();
    }

    _isSecure(): boolean {
      return this.inner._isSecure();
    }

    _equals(other: grpc.ChannelCredentials): boolean {
      return other === this;
    }

    _createSecureConnector(...args: Parameters<grpc.ChannelCredentials['_createSecureConnector']>): ReturnType<grpc.ChannelCredentials['_createSecureConnector']> {
      const connector = this.inner._createSecureConnector(...args);
      return {
        connect: (socket: Socket) => {
          this.sockets.add(socket);
          socket.once('close', () => this.sockets.delete(socket));
          return connector.connect(socket);
        },
        waitForReady: () => connector.waitForReady(),
        getCallCredentials: () => connector.getCallCredentials(),
        destroy: () => connector.destroy(),
      };
    }

    resetSockets(): void {
      for (const socket of this.sockets) hardClose(socket);
      this.sockets.clear();
    }
  }
  return { grpc: grpcJs, checkMethod, transportCodes, SocketTrackingCredentials };
}

/**
 * grpc://host:port (plaintext) or grpcs://host[:port] (TLS) — the standard
 * grpc.health.v1.Health/Check with the configured service name. SERVING is
 * success; NOT_SERVING, UNKNOWN and any error status (NOT_FOUND for an unknown
 * service, UNIMPLEMENTED for a server without the health service…) are
 * failures that name the status. One channel is kept between runs; after a
 * timeout or a transport error it is closed and the next run opens a new one
 * (a fresh connection attempt, not grpc-js's reconnect backoff).
 */
function createGrpcProbe(check: GrpcCheckConfig, context: ProbeContext): Probe {
  const { grpc, checkMethod, transportCodes: TRANSPORT_CODES, SocketTrackingCredentials } = loadDriver();
  const { secure, target: address } = endpoint(check);
  const where = context.redactor.text(target(check));
  const tls = check.tls;
  const certs = (context.certExpiry ?? new CertExpiryRegistry()).recorder(check.name, check.kind);
  let seenCertificate: CertExpiry | undefined;
  let client: grpc.Client | undefined;
  let clientCredentials: InstanceType<typeof SocketTrackingCredentials> | undefined;

  function credentials(): grpc.ChannelCredentials {
    if (!secure) return grpc.credentials.createInsecure();
    const verify: grpc.VerifyOptions = {
      rejectUnauthorized: !(tls?.insecureSkipVerify ?? false),
      // Called by node:tls with the whole peer chain once the chain verified: the one place grpc-js lets us see the certificate.
      checkServerIdentity: (hostname: string, cert: PeerCertificate) => {
        const expiry = certificateExpiry(cert);
        if (expiry) {
          seenCertificate = expiry;
          certs.record(expiry);
        }
        return checkServerIdentity(tls?.serverName ?? hostname, cert);
      },
    };
    return grpc.credentials.createSsl(
      tls?.ca ? Buffer.from(tls.ca) : null,
      tls?.key ? Buffer.from(tls.key) : null,
      tls?.cert ? Buffer.from(tls.cert) : null,
      verify,
    );
  }

  function channel(): grpc.Client {
    if (client) return client;
    const options: grpc.ChannelOptions = {
      'grpc.primary_user_agent': 'otel-health-sidecar',
      // one attempt per run: the policy owns retries and backoff
      'grpc.enable_retries': 0,
      // a private subchannel pool: grpc-js otherwise shares connections between channels to the same target,
      // so a "new" channel after a timeout could pick up the very connection that hung
      'grpc.use_local_subchannel_pool': 1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': Math.max(100, check.interval),
    };
    if (secure && tls?.serverName) {
      options['grpc.ssl_target_name_override'] = tls.serverName;
      options['grpc.default_authority'] = tls.serverName;
    }
    clientCredentials = new SocketTrackingCredentials(credentials());
    client = new grpc.Client(address, clientCredentials, options);
    return client;
  }

  function drop(): void {
    const current = client;
    const sockets = clientCredentials;
    client = undefined;
    clientCredentials = undefined;
    current?.close();
    sockets?.resetSockets();
  }

  function call(signal: AbortSignal): Promise<{ status: string }> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(abortError(signal));
      const active = channel();
      let settled = false;
      const onAbort = () => {
        if (settled) return;
        settled = true;
        pending.cancel();
        if (client === active) drop(); // a black-holed connection is not reused
        reject(abortError(signal));
      };
      const pending = active.makeUnaryRequest(
        CHECK_PATH,
        checkMethod.requestSerialize,
        checkMethod.responseDeserialize,
        { service: check.service },
        new grpc.Metadata(),
        { deadline: Date.now() + check.timeout + DEADLINE_HEADROOM_MS },
        (err: grpc.ServiceError | null, response?: { status: string }) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          if (err) {
            if (TRANSPORT_CODES.has(err.code) && client === active) drop();
            reject(err);
          } else resolve(response ?? { status: 'UNKNOWN' });
        },
      );
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  return {
    async run(signal) {
      let reply: { status: string };
      try {
        reply = await call(signal);
      } catch (err) {
        if (signal.aborted) throw err;
        const grpcError = err as Partial<grpc.ServiceError>;
        const code = grpcError.code !== undefined ? grpc.status[grpcError.code] ?? String(grpcError.code) : undefined;
        const details = grpcError.details || (err instanceof Error ? err.message : String(err));
        // An answer with a status (NOT_FOUND, UNIMPLEMENTED…) is the server speaking: a failed result, not an unreachable dependency.
        if (code && !TRANSPORT_CODES.has(grpcError.code!)) return { ok: false, message: context.redactor.text(`${where}: ${code} (${details})`) };
        throw new ProbeFailure(grpcError.code === 16 ? PROBE_ERROR.auth : PROBE_ERROR.connect, context.redactor.text(`${where}: ${code ? `${code}: ` : ''}${details}`), { cause: err });
      }
      if (reply.status !== 'SERVING') return { ok: false, message: `${where}: ${reply.status}` };
      if (secure) {
        const verdict = minValidityVerdict(seenCertificate, tls ?? {});
        if (verdict.state === 'fail') return { ok: false, message: `${where}: SERVING, but ${verdict.message}` };
        if (verdict.state === 'warn') return { ok: true, message: `${where}: SERVING; ${verdict.message}` };
      }
      return { ok: true, message: `${where}: SERVING` };
    },
    async close() {
      drop();
      certs.clear();
    },
  };
}

export const grpcKind: ProbeKind<GrpcCheckConfig> = {
  kind: 'grpc',
  schema,
  create: createGrpcProbe,
  targetField: 'url',
  placeholder: 'grpc://unset.invalid:1',
  target,
  secrets: (check) => [...(check.tls?.key ? [check.tls.key] : []), ...urlSecrets(check.url)],
  redact: (check, redactor) => ({ ...check, url: redactor.url(check.url) }),
};
