import { connect, type Socket } from 'node:net';
import type { CheckConfigOf } from '../config/types';
import { abortable, type Probe, type ProbeContext } from './probe';

/** tcp://host:port — healthy when a TCP connection is accepted. Connects fresh each run. */
export function createTcpProbe(check: CheckConfigOf<'tcp'>, _context: ProbeContext): Probe {
  const url = new URL(check.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port);
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
        await abortable(connected, signal, () => socket.destroy());
        return { ok: true, message: `connected to ${host}:${port}` };
      } finally {
        socket.destroy();
      }
    },
    async close() {
      for (const socket of open) socket.destroy();
    },
  };
}
