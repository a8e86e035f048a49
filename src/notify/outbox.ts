/**
 * The notification outbox: what waits to be delivered, what each target was
 * last told, and the port through which both are kept durable (persist/
 * implements it over Redis with `state.redis`; without it they live in
 * memory only).
 *
 * Guarantee (docs/notifications.md, "Delivery guarantee"): at-least-once with
 * a stable id. A message is written to the outbox before its first attempt
 * and removed only when delivered or given up (dead letter), so a crash
 * between the receiver accepting it and the removal sends it again, under
 * the same id; receivers drop the duplicate by `Idempotency-Key`.
 *
 * Ids: derived from the incident and the transition, never random, so the
 * same news gets the same id in every process that computes it — before and
 * after a restart, on the first attempt and on a redelivery.
 */
import { createHash } from 'node:crypto';
import type { CheckStatus } from '../health/state';
import type { NotificationEvent } from './target';

/** one message waiting for one target */
export interface PendingMessage {
  event: NotificationEvent;
  /** ms epoch when it was queued (retention counts from here) */
  queuedAt: number;
  /** delivery attempts made so far (all rounds) */
  attempts: number;
  /** rounds of attempts that failed so far (the redelivery backoff grows with it) */
  rounds: number;
  /** ms epoch before which no attempt is made */
  nextAttemptAt: number;
  /** the last error, redacted */
  lastError?: string;
  /** order of queuing within the target (resumed in this order after a restart) */
  seq: number;
}

/** what a target was last told about a check */
export interface Told {
  status: CheckStatus;
  incidentId: string | null;
  /** ms epoch of the state change told */
  at: number;
}

export interface StoredOutbox {
  /** per target, in any order (sorted by seq on resume) */
  pending: Record<string, PendingMessage[]>;
  /** per target, per check */
  told: Record<string, Record<string, Told>>;
}

/**
 * Where the outbox is kept. Calls never block delivery for long: `put`
 * resolves false when the write could not be made (the message is then
 * attempted anyway, and the write retried in the background).
 */
export interface OutboxStore {
  put(target: string, message: PendingMessage, retentionMs: number): Promise<boolean>;
  remove(target: string, id: string): void;
  tell(target: string, check: string, told: Told): void;
}

/** A stable id for the news that `check` (of `service`) went `to`, in `incidentId` (or at `at` when no incident names it). */
export function eventId(service: string, check: string, to: CheckStatus, incidentId: string | null, at: number): string {
  const hex = createHash('sha256')
    .update(`${service}\u0000${check}\u0000${to}\u0000${incidentId ?? `at:${at}`}`)
    .digest('hex');
  // shaped as a UUID (version nibble 5, RFC 4122 variant) so receivers that expect one accept it
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Fold the undelivered messages of one check into one that tells the whole
 * story: the newest message (its id, its state, its incident), with the
 * states of the older ones as its timeline and their count as suppressed.
 * `older` oldest first; none of them is being attempted.
 */
export function fold(older: readonly PendingMessage[], newest: PendingMessage): PendingMessage {
  const timeline = [...older.flatMap((m) => m.event.timeline ?? [{ status: m.event.to, at: m.event.at }]), ...(newest.event.timeline ?? [{ status: newest.event.to, at: newest.event.at }])];
  const first = older[0] ?? newest;
  return {
    ...newest,
    event: {
      ...newest.event,
      from: first.event.from,
      suppressed: older.reduce((n, m) => n + m.event.suppressed + 1, newest.event.suppressed),
      timeline,
    },
    // the place in line and the backoff of the oldest: a receiver that is down stays backed off
    seq: first.seq,
    attempts: older.reduce((n, m) => n + m.attempts, newest.attempts),
    rounds: Math.max(...older.map((m) => m.rounds), newest.rounds),
    nextAttemptAt: Math.max(first.nextAttemptAt, newest.nextAttemptAt),
    lastError: older.at(-1)?.lastError ?? newest.lastError,
  };
}
