/**
 * What a probe feeds to metrics from its own state (docs/telemetry.md,
 * "Per-check connections" and "HTTP phases"), through a port it is handed in
 * its ProbeContext:
 *
 *  - the connections the check holds, idle or in use: `db.client.connection.count`
 *    for postgres, `healthcheck.connections` for redis and http, read at
 *    collection time from a function the probe hands in, so a run pays nothing;
 *  - `healthcheck.http.phase.duration{phase}` for http checks.
 *
 * The instruments themselves are made by telemetry/instruments.ts
 * (`probeMetrics`), from the Meter the SDK bootstrap hands it; probes never
 * take a Meter. Without a `ProbeMetrics` (OTEL_SDK_DISABLED, no metrics
 * reader, `check` and `validate`) nothing is recorded.
 *
 * Each probe registers at its first run and unregisters on close: no module state.
 */

export interface ConnectionCounts {
  /** open and waiting for the next run */
  idle: number;
  /** open and in use by a run (or connecting) */
  used: number;
}

/** One check's recording, from its first run until it closes. */
export interface ProbeRecorder {
  /** one phase of an http run */
  recordPhase(phase: string, seconds: number): void;
  /** the probe closed: its connection series report 0 once more, then stop */
  close(): void;
}

/** The port a probe records through (implemented by telemetry/instruments.ts `probeMetrics`). */
export interface ProbeMetrics {
  /**
   * Start recording for one check; `connections` is read at each collection
   * (undefined: the kind reports no connection gauge).
   */
  register(check: { readonly name: string; readonly kind: string }, connections?: () => ConnectionCounts): ProbeRecorder;
}

export interface ProbeInstruments {
  /** register with the ProbeMetrics at the first call (the start of the first run); cheap afterwards */
  sync(): void;
  /** one phase of an http run */
  recordPhase(phase: string, seconds: number): void;
  /** stop observing (probe closed) */
  close(): void;
  /** a run is in progress: a kind whose kept connections are all in use during a run reports them as `used` */
  readonly busy: boolean;
  /** one run: sync(), then `run` with `busy` set until it settles */
  track<T>(run: () => Promise<T>): Promise<T>;
}

/** A probe's side of the port: registers at its first run, tracks whether a run is in progress. */
export function probeInstruments(check: { name: string; kind: string }, metrics: ProbeMetrics | undefined, connections?: () => ConnectionCounts): ProbeInstruments {
  let recorder: ProbeRecorder | undefined;
  let closed = false;
  let busy = false;
  return {
    sync() {
      if (closed || recorder || !metrics) return;
      recorder = metrics.register(check, connections);
    },
    recordPhase(phase, seconds) {
      recorder?.recordPhase(phase, seconds);
    },
    close() {
      closed = true;
      recorder?.close();
      recorder = undefined;
    },
    get busy() {
      return busy;
    },
    async track(run) {
      this.sync();
      busy = true;
      try {
        return await run();
      } finally {
        busy = false;
      }
    },
  };
}
