/**
 * Feeds the uptime history to a store and back. Never on the probe path:
 * `record` only adds the run's delta to a per-(check, minute) buffer; a timer
 * writes the buffer every `flushMs` (one batch, incremental adds), so Redis
 * being slow or down never holds up a probe.
 *
 * A check's stored history is loaded (and merged into the in-memory history)
 * before any of its deltas are written: what this process recorded before the
 * load is not yet in the store, so nothing is counted twice. While the store
 * cannot be reached, loads are retried on each tick and deltas wait (the
 * oldest beyond 24 h are dropped: their minutes are gone from the history
 * too). Closing writes what is buffered.
 */
import { addCounts, MINUTE_SLOTS, type History, type HistoryRun, type RunDelta } from '../health/history';
import type { MinuteDelta, UptimeStore } from './uptime-store';

export interface UptimeRecorderOptions {
  store: UptimeStore;
  history: History;
  /** ms between writes (default 5 s): what a crash (kill -9) can lose */
  flushMs?: number;
  now?: () => number;
  /** the store failed (once per outage: not again until it has recovered) */
  onError?: (message: string) => void;
  /** the store answers again (after an error) */
  onRecovered?: () => void;
}

export class UptimeRecorder {
  /** check → minute → delta not written yet */
  private readonly pending = new Map<string, Map<number, MinuteDelta>>();
  private readonly loaded = new Set<string>();
  private readonly tracked = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private failing = false;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly options: UptimeRecorderOptions) {
    this.now = options.now ?? Date.now;
  }

  /** start the write loop (and the first loads) */
  start(checks: readonly string[]): void {
    this.setChecks(checks);
    this.timer = setInterval(() => void this.tick(), this.options.flushMs ?? 5000);
    this.timer.unref();
    void this.tick();
  }

  /** the checks this process records (start, reload, shard hand-over); new ones are loaded, gone ones forgotten after a last write */
  setChecks(checks: readonly string[]): void {
    const next = new Set(checks);
    for (const name of this.tracked) {
      if (next.has(name)) continue;
      this.tracked.delete(name);
      this.loaded.delete(name);
      // its last deltas are written by the next tick; its memory is dropped so a later return re-loads it
      this.options.history.remove(name);
    }
    for (const name of next) this.tracked.add(name);
  }

  /** a run finished: into the history (checks this process records only) and the write buffer */
  record(check: string, run: HistoryRun): void {
    if (this.closed || !this.tracked.has(check)) return;
    this.buffer(check, this.options.history.record(check, run));
  }

  private buffer(check: string, delta: RunDelta): void {
    let byMinute = this.pending.get(check);
    if (!byMinute) {
      byMinute = new Map();
      this.pending.set(check, byMinute);
    }
    const entry = byMinute.get(delta.minute);
    if (entry) addCounts(entry.counts, delta.counts);
    else byMinute.set(delta.minute, { check, minute: delta.minute, counts: { ...delta.counts } });
  }

  /** load what is missing and write what is buffered, now (tests, shutdown) */
  flush(): Promise<void> {
    return this.tick();
  }

  /** a last write, then stop */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.closed = true; // no more records or ticks; the buffer is written once more below
    await this.running;
    await this.loadAndWrite(true);
    await this.options.store.close();
  }

  /** deltas waiting to be written (tests, diagnostics) */
  get pendingCount(): number {
    let n = 0;
    for (const m of this.pending.values()) n += m.size;
    return n;
  }

  /** one tick at a time: a caller that comes during one waits for it, then runs its own (loadAndWrite never rejects) */
  private tick(): Promise<void> {
    const run = (this.running ?? Promise.resolve()).then(() => this.loadAndWrite());
    this.running = run;
    void run.then(() => {
      if (this.running === run) this.running = undefined;
    });
    return run;
  }

  private async loadAndWrite(closing = false): Promise<void> {
    if (this.closed && !closing) return;
    const { store, history } = this.options;
    try {
      for (const name of closing ? [] : this.tracked) {
        if (this.loaded.has(name)) continue;
        const stored = await store.load(name, this.now());
        if (!this.tracked.has(name)) continue; // removed while loading
        history.restore(name, stored);
        this.loaded.add(name);
      }
      const oldest = Math.floor(this.now() / 60_000) - MINUTE_SLOTS;
      const batch: MinuteDelta[] = [];
      for (const [name, byMinute] of this.pending) {
        // a tracked check writes only once its stored history is merged (else that merge would count its runs twice);
        // one no longer tracked, or any at close, writes its last deltas (its memory is gone: nothing is counted twice)
        if (!closing && !this.loaded.has(name) && this.tracked.has(name)) {
          for (const minute of byMinute.keys()) if (minute < oldest) byMinute.delete(minute);
          continue;
        }
        batch.push(...byMinute.values());
        this.pending.delete(name);
      }
      if (batch.length) {
        try {
          await store.add(batch);
        } catch (err) {
          for (const delta of batch) this.buffer(delta.check, delta); // back in the buffer, merged with newer ones
          throw err;
        }
      }
      if (this.failing) {
        this.failing = false;
        this.options.onRecovered?.();
      }
    } catch (err) {
      if (!this.failing) {
        this.failing = true;
        this.options.onError?.((err as Error)?.message ?? String(err));
      }
    }
  }
}
