import { connect, type Socket } from 'node:net';
import type { CheckConfigOf } from '../config/types';
import { ProbeFailure } from '../errors';
import { abortable, errorMessage, hardClose, type Probe, type ProbeContext } from './probe';

/**
 * tcp://host:port — healthy when a TCP connection is accepted. Connects fresh
 * each run and closes with an RST right away (as HAProxy's tcp-check does): a
 * connect check has nothing to say to the server, and an RST leaves no
 * TIME_WAIT socket behind on our side nor a half-open one on a hung server's.
 */
export function createTcpProbe(check: CheckConfigOf<'tcp'>, context: ProbeContext): Probe {
  const url = new URL(check.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port);
  const where = `${host}:${port}`;
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
        throw new ProbeFailure('TCP_CONNECT_FAILED', context.redactor.text(`tcp ${where}: ${errorMessage(err)}`));
      } finally {
        hardClose(socket);
      }
    },
    async close() {
      for (const socket of open) hardClose(socket);
    },
  };
}
