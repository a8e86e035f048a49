/**
 * Messages that could not be delivered after every attempt. Bounded: when
 * full, the oldest letter is dropped and counted (`dropped`), so nothing is
 * lost without a trace. Listed by GET /admin/notifications/dead and retried
 * by POST to the same path.
 */
import type { NotificationEvent } from './target';

export interface DeadLetter {
  /** the event id; with the target it identifies the letter */
  id: string;
  target: string;
  event: NotificationEvent;
  /** the last error (already redacted) */
  error: string;
  attempts: number;
  /** ms epoch when it was given up */
  failedAt: number;
}

export class DeadLetterList {
  private letters: DeadLetter[] = []; // oldest first
  private droppedCount = 0;

  constructor(
    private max: number,
    private readonly onChange: (letters: readonly DeadLetter[], dropped: number) => void = () => undefined,
    private readonly onDrop: (letter: DeadLetter) => void = () => undefined,
  ) {}

  get dropped(): number {
    return this.droppedCount;
  }

  get size(): number {
    return this.letters.length;
  }

  setMax(max: number): void {
    this.max = max;
    if (this.trim()) this.changed();
  }

  add(letter: DeadLetter): void {
    this.letters = this.letters.filter((l) => !(l.id === letter.id && l.target === letter.target));
    this.letters.push(letter);
    this.trim();
    this.changed();
  }

  /** oldest first */
  list(): DeadLetter[] {
    return [...this.letters];
  }

  /** remove and return the letters that match (all when no filter) */
  take(filter: { id?: string; target?: string } = {}): DeadLetter[] {
    const taken: DeadLetter[] = [];
    this.letters = this.letters.filter((letter) => {
      const match = (filter.id === undefined || letter.id === filter.id) && (filter.target === undefined || letter.target === filter.target);
      if (match) taken.push(letter);
      return !match;
    });
    if (taken.length) this.changed();
    return taken;
  }

  /** letters loaded from persistence, merged with any added since start */
  restore(stored: readonly DeadLetter[], dropped: number): void {
    const byKey = new Map<string, DeadLetter>();
    for (const letter of stored) if (isLetter(letter)) byKey.set(`${letter.target}/${letter.id}`, letter);
    for (const letter of this.letters) byKey.set(`${letter.target}/${letter.id}`, letter);
    this.letters = [...byKey.values()].sort((a, b) => a.failedAt - b.failedAt);
    this.droppedCount += Number.isFinite(dropped) ? dropped : 0;
    this.trim();
  }

  private trim(): boolean {
    let any = false;
    while (this.letters.length > this.max) {
      const dropped = this.letters.shift()!;
      this.droppedCount++;
      this.onDrop(dropped);
      any = true;
    }
    return any;
  }

  private changed(): void {
    this.onChange(this.letters, this.droppedCount);
  }
}

function isLetter(value: unknown): value is DeadLetter {
  const l = value as DeadLetter;
  return !!l && typeof l.id === 'string' && typeof l.target === 'string' && !!l.event && typeof l.event.check === 'string' && typeof l.failedAt === 'number';
}
