/**
 * Graceful close of the HTTP server (issue 16.5). `close()`:
 *   1. stops accepting: the listening socket is closed (new connections are
 *      refused) and idle keep-alive connections are closed;
 *   2. lets every request in flight finish: each is answered with
 *      `Connection: close`, and its connection is closed once it is answered
 *      (no request is cut);
 *   3. only at the deadline are connections still busy closed by force, and
 *      how many is reported.
 * Requests arriving on an existing keep-alive connection while draining are
 * still served (and told `Connection: close`).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface DrainResult {
  /** requests still unanswered at the deadline (their connections were closed) */
  cut: number;
}

export interface RequestTracker {
  /** requests received and not yet answered */
  readonly inFlight: number;
  /** stop accepting, wait for the requests in flight until deadlineMs (epoch ms), then close */
  close(deadlineMs: number): Promise<DrainResult>;
}

export function trackRequests(server: Server): RequestTracker {
  const open = new Set<ServerResponse>();
  let closing = false;
  let idle: (() => void) | undefined;
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (res.writableEnded) return; // answered synchronously (the kubelet fast path): nothing in flight
    open.add(res);
    if (closing && !res.headersSent) res.setHeader('connection', 'close');
    res.once('close', () => {
      open.delete(res);
      if (closing) server.closeIdleConnections();
      if (open.size === 0) idle?.();
    });
  });
  return {
    get inFlight() {
      return open.size;
    },
    async close(deadlineMs) {
      closing = true;
      for (const res of open) if (!res.headersSent) res.setHeader('connection', 'close');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => (timer = setTimeout(() => resolve('deadline'), Math.max(0, deadlineMs - Date.now()))));
      const drained = new Promise<void>((resolve) => {
        idle = resolve;
        if (open.size === 0) resolve();
      });
      let cut = 0;
      if ((await Promise.race([drained, deadline])) === 'deadline') cut = open.size;
      server.closeIdleConnections();
      if ((await Promise.race([closed, deadline])) === 'deadline') {
        cut = Math.max(cut, open.size);
        server.closeAllConnections();
        await closed;
      }
      clearTimeout(timer);
      return { cut };
    },
  };
}
