import { connect, type Socket } from 'node:net';
import { z } from 'zod';
import { commonCheck, urlWithSchemes } from '../config/schema';
import { urlSecrets } from '../config/secrets';
import type { KindCheckConfig } from '../config/types';
import { ProbeFailure, PROBE_ERROR, probeErrorCode } from '../errors';
import { abortable, errorMessage, hardClose, type Probe, type ProbeContext, type ProbeKind } from './probe';

const schema = z.strictObject({
  ...commonCheck,
  kind: z.literal('tcp'),
  url: urlWithSchemes(['tcp']).refine((u) => {
    try {
      const url = new URL(u);
      return url.protocol !== 'tcp:' || url.port !== ''; // a wrong scheme is reported by the URL rule
    } catch {
      return true; // reported by the URL rule
    }
  }, { error: 'must name a port: tcp://host:port' }),
});

export type TcpCheckConfig = KindCheckConfig<typeof schema>;

function hostPort(check: TcpCheckConfig): { host: string; port: number } {
  const url = new URL(check.url);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) };
}

const target = (check: TcpCheckConfig) => {
  const { host, port } = hostPort(check);
  return `${host}:${port}`;
};

/**
 * tcp://host:port — healthy when a TCP connection is accepted. Connects fresh
 * each run and closes with an RST right away (as HAProxy's tcp-check does): a
 * connect check has nothing to say to the server, and an RST leaves no
 * TIME_WAIT socket behind on our side nor a half-open one on a hung server's.
 */
function createTcpProbe(check: TcpCheckConfig, context: ProbeContext): Probe {
  const { host, port } = hostPort(check);
  const where = target(check);
  const open = new Set<Socket>();
  return {
    async run(signal) {
      const socket = connect({ host, port });
      open.add(socket);
      socket.once('close', () => open.delete(socket));
      const connected = new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      try {
        await abortable(connected, signal);
        return { ok: true, message: `connected to ${where}` };
      } catch (err) {
        if (signal.aborted) throw err;
        throw new ProbeFailure(probeErrorCode(err) === PROBE_ERROR.failed ? PROBE_ERROR.connect : probeErrorCode(err), context.redactor.text(`tcp ${where}: ${errorMessage(err)}`), { cause: err });
      } finally {
        hardClose(socket);
      }
    },
    async close() {
      for (const socket of open) hardClose(socket);
    },
  };
}

export const tcpKind: ProbeKind<TcpCheckConfig> = {
  kind: 'tcp',
  schema,
  create: createTcpProbe,
  targetField: 'url',
  placeholder: 'tcp://unset.invalid:1',
  target: (check) => `tcp ${target(check)}`,
  secrets: (check) => urlSecrets(check.url),
  redact: (check, redactor) => ({ ...check, url: redactor.url(check.url) }),
};
