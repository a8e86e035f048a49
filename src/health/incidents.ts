/**
 * Incidents: a DOWN period of one check. Opened when the check goes DOWN
 * (after hysteresis), closed when it comes back UP (or is reset/removed).
 * `start` is when the failing streak began (its first failed run), not when
 * hysteresis confirmed it (`detectedAt`), so the duration is the real outage.
 * Bounded: the oldest closed incidents are dropped first.
 */
import { randomBytes } from 'node:crypto';
import type { CheckState, RunResult, Transition } from './state';

export interface Incident {
  id: string;
  check: string;
  critical: boolean;
  /** ms epoch: the first failed run of the streak that led to DOWN */
  startedAt: number;
  /** ms epoch: the transition to DOWN */
  detectedAt: number;
  endedAt: number | null;
  firstError: string;
  lastError: string;
  /** failed runs from the start of the streak to the end of the incident */
  failedProbes: number;
  closedBy: 'recovered' | 'reset' | 'removed' | null;
}

export interface IncidentJson {
  id: string;
  check: string;
  critical: boolean;
  open: boolean;
  start: string;
  detectedAt: string;
  end: string | null;
  /** end − start, or now − start while open */
  durationMs: number;
  firstError: string;
  lastError: string;
  failedProbes: number;
  closedBy: Incident['closedBy'];
}

interface Streak {
  startedAt: number;
  firstError: string;
  lastError: string;
  failures: number;
}

export function newIncidentId(at: number): string {
  return `inc-${at.toString(36)}-${randomBytes(3).toString('hex')}`;
}

export class IncidentLog {
  private incidents: Incident[] = []; // oldest first
  private readonly streaks = new Map<string, Streak>();
  private readonly openByCheck = new Map<string, Incident>();

  constructor(
    private max: number,
    private readonly onChange: (incidents: readonly Incident[]) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  setMax(max: number): void {
    this.max = max;
    if (this.trim()) this.onChange(this.incidents);
  }

  /** every run (HealthStore.onRecord): keeps the failing streak and the open incident up to date */
  observeRun(name: string, run: RunResult, state: CheckState): void {
    if (run.ok) {
      this.streaks.delete(name);
      return;
    }
    const streak = this.streaks.get(name);
    if (streak) {
      streak.failures++;
      streak.lastError = run.message;
    } else this.streaks.set(name, { startedAt: run.startedAt, firstError: run.message, lastError: run.message, failures: 1 });
    const open = this.openByCheck.get(name);
    if (open && state.status === 'DOWN') {
      open.failedProbes++;
      open.lastError = run.message;
      this.onChange(this.incidents);
    }
  }

  /** a state change (HealthStore.onTransition): returns the incident it opened, continued or closed */
  observeTransition(t: Transition): Incident | undefined {
    const open = this.openByCheck.get(t.check);
    if (t.to === 'DOWN') {
      if (open) return open; // resumed after a restart: the outage goes on
      const streak = this.streaks.get(t.check);
      const incident: Incident = {
        id: newIncidentId(t.at),
        check: t.check,
        critical: t.state.critical,
        startedAt: streak?.startedAt ?? t.at,
        detectedAt: t.at,
        endedAt: null,
        firstError: streak?.firstError ?? t.message,
        lastError: streak?.lastError ?? t.message,
        failedProbes: streak?.failures ?? 1,
        closedBy: null,
      };
      this.incidents.push(incident);
      this.openByCheck.set(t.check, incident);
      this.trim();
      this.onChange(this.incidents);
      return incident;
    }
    if (open) return this.close(open, t.at, t.to === 'UP' ? 'recovered' : 'reset');
    return undefined;
  }

  /** checks removed by a reload: their open incidents end now */
  closeMissing(known: ReadonlySet<string>): void {
    for (const [check, incident] of [...this.openByCheck]) if (!known.has(check)) this.close(incident, this.now(), 'removed');
    for (const check of [...this.streaks.keys()]) if (!known.has(check)) this.streaks.delete(check);
  }

  /** the open incident of a check, if any */
  openFor(check: string): Incident | undefined {
    return this.openByCheck.get(check);
  }

  /** newest first */
  list(): Incident[] {
    return [...this.incidents].reverse();
  }

  /** incidents loaded from persistence, merged with any opened since start (by id) */
  restore(stored: readonly Incident[]): void {
    const byId = new Map(stored.filter(isIncident).map((i) => [i.id, { ...i }]));
    for (const incident of this.incidents) byId.set(incident.id, incident);
    this.incidents = [...byId.values()].sort((a, b) => a.startedAt - b.startedAt);
    this.openByCheck.clear();
    for (const incident of this.incidents) if (incident.endedAt === null) this.openByCheck.set(incident.check, incident);
    this.trim();
  }

  toJson(incident: Incident): IncidentJson {
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      id: incident.id,
      check: incident.check,
      critical: incident.critical,
      open: incident.endedAt === null,
      start: iso(incident.startedAt),
      detectedAt: iso(incident.detectedAt),
      end: incident.endedAt === null ? null : iso(incident.endedAt),
      durationMs: (incident.endedAt ?? this.now()) - incident.startedAt,
      firstError: incident.firstError,
      lastError: incident.lastError,
      failedProbes: incident.failedProbes,
      closedBy: incident.closedBy,
    };
  }

  private close(incident: Incident, at: number, by: NonNullable<Incident['closedBy']>): Incident {
    incident.endedAt = Math.max(at, incident.startedAt);
    incident.closedBy = by;
    this.openByCheck.delete(incident.check);
    this.onChange(this.incidents);
    return incident;
  }

  /** drop the oldest closed incidents (then the oldest at all) beyond max; true when any was dropped */
  private trim(): boolean {
    let dropped = false;
    while (this.incidents.length > this.max) {
      const index = this.incidents.findIndex((i) => i.endedAt !== null);
      const [removed] = this.incidents.splice(index >= 0 ? index : 0, 1);
      if (removed && this.openByCheck.get(removed.check) === removed) this.openByCheck.delete(removed.check);
      dropped = true;
    }
    return dropped;
  }
}

function isIncident(value: unknown): value is Incident {
  const i = value as Incident;
  return !!i && typeof i.id === 'string' && typeof i.check === 'string' && typeof i.startedAt === 'number' && (i.endedAt === null || typeof i.endedAt === 'number');
}
