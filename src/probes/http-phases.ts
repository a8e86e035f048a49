/**
 * Per-phase timing of an http check's requests, as blackbox_exporter reports
 * it (prober/http.go): from Node's own socket and TLS events, one set of marks
 * per request (hop) of a run, summed over the hops of the run.
 *
 *   dns       request start → the socket's 'lookup' (0 for an IP literal: no lookup)
 *   connect   lookup (or start) → TCP 'connect'
 *   tls       'connect' → 'secureConnect' (https only)
 *   ttfb      connection ready (or, on a reused keep-alive connection, the request
 *             start) → the first response byte (a 'data' listener put ahead of the
 *             HTTP parser's)
 *   transfer  first byte → the end of the response (or the point the probe stopped
 *             reading: 64 KiB for the body assertions)
 *
 * A request sent on a reused keep-alive connection has no dns, connect or tls
 * phase: those phases are absent (not 0) for it, and its ttfb counts from the
 * request start. So the phases of one hop always add up to its duration from
 * request start to response end, and the phases of a run to the sum of its
 * hops. blackbox_exporter calls ttfb "processing" and sums its phases over the
 * redirects of a probe as this does; it never reuses a connection.
 */
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { listenUnbound } from './probe';

export const HTTP_PHASES = ['dns', 'connect', 'tls', 'ttfb', 'transfer'] as const;
export type HttpPhase = (typeof HTTP_PHASES)[number];

/** Moments of one request, ms on the performance.now() clock; undefined: not reached. */
export interface HopMarks {
  start: number;
  /** sent on a kept-alive connection (no dns/connect/tls) */
  reused?: boolean;
  lookup?: number;
  connect?: number;
  secure?: number;
  firstByte?: number;
  end?: number;
  https: boolean;
}

export type PhaseDurations = Partial<Record<HttpPhase, number>>;

/** Phase durations of one request (ms). A phase is present once it has ended. */
export function hopPhases(marks: HopMarks): PhaseDurations {
  const out: PhaseDurations = {};
  let ready: number | undefined;
  if (marks.reused) {
    ready = marks.start;
  } else if (marks.connect !== undefined) {
    const resolved = marks.lookup ?? marks.start;
    out.dns = resolved - marks.start;
    out.connect = marks.connect - resolved;
    ready = marks.connect;
    if (marks.https) {
      if (marks.secure === undefined) return out;
      out.tls = marks.secure - marks.connect;
      ready = marks.secure;
    }
  } else {
    if (marks.lookup !== undefined) out.dns = marks.lookup - marks.start;
    return out;
  }
  if (marks.firstByte === undefined) return out;
  out.ttfb = marks.firstByte - ready;
  if (marks.end !== undefined) out.transfer = marks.end - marks.firstByte;
  return out;
}

/** The phases of a run: each summed over the hops that had it (absent when none did). */
export function runPhases(hops: readonly HopMarks[]): PhaseDurations {
  const out: PhaseDurations = {};
  for (const hop of hops) {
    const phases = hopPhases(hop);
    for (const phase of HTTP_PHASES) {
      const ms = phases[phase];
      if (ms !== undefined) out[phase] = (out[phase] ?? 0) + Math.max(0, ms);
    }
  }
  return out;
}

/**
 * Start the marks of one request: call right after http(s).request(). The
 * listeners go away with the request; the socket's stay only until they fire
 * or the response ends (a kept socket carries no listener into the next run).
 */
export function markRequest(req: ClientRequest, https: boolean, start: number): HopMarks {
  const marks: HopMarks = { start, https };
  // fired once per request each; the listeners only take times (see listenUnbound)
  listenUnbound(req, 'socket', (socket: Socket) => {
    // reusedSocket is set only for a socket taken from the free list; one handed straight from
    // the previous request to a queued one (a redirect on the same origin) is open already as well
    marks.reused = req.reusedSocket || !socket.connecting;
    const onLookup = () => (marks.lookup ??= performance.now());
    const onConnect = () => (marks.connect ??= performance.now());
    const onSecure = () => (marks.secure ??= performance.now());
    const onData = () => (marks.firstByte ??= performance.now());
    if (!marks.reused) {
      socket.once('lookup', onLookup);
      socket.once('connect', onConnect);
      if (https) socket.once('secureConnect', onSecure);
    }
    // ahead of the HTTP parser's listener, which emits 'response' from inside its own
    socket.prependOnceListener('data', onData);
    listenUnbound(req, 'close', () => {
      socket.removeListener('lookup', onLookup);
      socket.removeListener('connect', onConnect);
      socket.removeListener('secureConnect', onSecure);
      socket.removeListener('data', onData);
    });
  });
  return marks;
}
