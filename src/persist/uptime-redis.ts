/**
 * Uptime history in Redis (`state.redis`). Keys, per check, all UTC:
 *
 *   {prefix}:uptime:{check}:m:{YYYY-MM-DDTHH:MM}   minute buckets of one half hour (HH:00 or HH:30)
 *       fields {minute}:ok {minute}:fail {minute}:rej {minute}:lat   (minute of the hour 0–59; lat = µs)
 *       expires 25 h after the half hour ends
 *   {prefix}:uptime:{check}:h:{YYYY-MM-DD}          hour buckets of one day
 *       fields {hour}:ok {hour}:fail {hour}:rej {hour}:lat            (hour of the day 0–23)
 *       expires 31 days after the day ends
 *
 * Every write is HINCRBY of a delta (MULTI per batch, with EXPIREAT of each
 * key touched): buckets are never rewritten whole, so two writers add up.
 * A half-hour key has at most 120 fields and a day key 96, under Redis's
 * default hash-max-listpack-entries (128): both stay in the compact
 * encoding. Bounded: per check at most 52 half-hour keys and 32 day keys.
 * Fields of zero are not written (a healthy minute is two fields: ok, lat).
 */
import type Redis from 'ioredis';
import { HOUR_MS, MINUTE_MS, type Counts, type RunDelta, type StoredHistory } from '../health/history';
import type { MinuteDelta, UptimeStore } from './uptime-store';
import { stateRedis } from './state-redis';

const HALF_HOUR_MS = 30 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** minute keys live 25 h after their half hour (the minute ring is 24 h) */
export const MINUTE_KEY_TTL_MS = 25 * HOUR_MS;
/** day keys live 31 days after their day (the hour ring is 30 days) */
export const DAY_KEY_TTL_MS = 31 * DAY_MS;
const FIELDS: [keyof Counts, string][] = [
  ['ok', 'ok'],
  ['failed', 'fail'],
  ['rejected', 'rej'],
  ['latencyUs', 'lat'],
];

const iso = (ms: number) => new Date(ms).toISOString();

export interface RedisUptimeStoreOptions {
  url: string;
  keyPrefix: string;
  connectTimeoutMs?: number;
}

export class RedisUptimeStore implements UptimeStore {
  private readonly redis: Redis;
  private connecting: Promise<void> | undefined;

  constructor(private readonly options: RedisUptimeStoreOptions) {
    this.redis = stateRedis(options.url, { connectTimeoutMs: options.connectTimeoutMs });
    // errors surface as rejected add/load calls; the recorder reports them
    this.redis.on('error', () => undefined);
  }

  /** the half-hour key holding `minute` */
  minuteKey(check: string, minute: number): string {
    const start = Math.floor((minute * MINUTE_MS) / HALF_HOUR_MS) * HALF_HOUR_MS;
    return `${this.options.keyPrefix}:uptime:${check}:m:${iso(start).slice(0, 16)}`;
  }

  /** the day key holding `hour` */
  dayKey(check: string, hour: number): string {
    return `${this.options.keyPrefix}:uptime:${check}:h:${iso(hour * HOUR_MS).slice(0, 10)}`;
  }

  async add(deltas: readonly MinuteDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    await this.ready();
    const multi = this.redis.multi();
    const expiries = new Map<string, number>();
    for (const { check, minute, counts } of deltas) {
      const hour = Math.floor(minute / 60);
      const mKey = this.minuteKey(check, minute);
      const hKey = this.dayKey(check, hour);
      const mm = minute - hour * 60;
      const hh = hour % 24;
      for (const [field, name] of FIELDS) {
        const value = Math.round(counts[field]);
        if (value === 0) continue;
        multi.hincrby(mKey, `${mm}:${name}`, value);
        multi.hincrby(hKey, `${hh}:${name}`, value);
      }
      const halfHourEnd = (Math.floor((minute * MINUTE_MS) / HALF_HOUR_MS) + 1) * HALF_HOUR_MS;
      const dayEnd = (Math.floor((hour * HOUR_MS) / DAY_MS) + 1) * DAY_MS;
      expiries.set(mKey, Math.ceil((halfHourEnd + MINUTE_KEY_TTL_MS) / 1000));
      expiries.set(hKey, Math.ceil((dayEnd + DAY_KEY_TTL_MS) / 1000));
    }
    for (const [key, at] of expiries) multi.expireat(key, at);
    const results = await multi.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('MULTI aborted');
  }

  async load(check: string, now: number): Promise<StoredHistory> {
    await this.ready();
    const pipeline = this.redis.pipeline();
    const halfHours: number[] = [];
    for (let start = Math.floor((now - DAY_MS) / HALF_HOUR_MS) * HALF_HOUR_MS; start <= now; start += HALF_HOUR_MS) {
      halfHours.push(start);
      pipeline.hgetall(this.minuteKey(check, start / MINUTE_MS));
    }
    const days: number[] = [];
    for (let day = Math.floor((now - 31 * DAY_MS) / DAY_MS) * DAY_MS; day <= now; day += DAY_MS) {
      days.push(day);
      pipeline.hgetall(this.dayKey(check, day / HOUR_MS));
    }
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    const values = results.map(([, value]) => value as Record<string, string>);
    const minutes: RunDelta[] = [];
    halfHours.forEach((start, i) => {
      const hourMinute = Math.floor(start / HOUR_MS) * 60;
      for (const [index, counts] of parseBuckets(values[i]!, 60)) minutes.push({ minute: hourMinute + index, counts });
    });
    const hours: StoredHistory['hours'] = [];
    days.forEach((day, i) => {
      const firstHour = day / HOUR_MS;
      for (const [index, counts] of parseBuckets(values[halfHours.length + i]!, 24)) hours.push({ hour: firstHour + index, counts });
    });
    return { minutes, hours };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private async ready(): Promise<void> {
    if (this.redis.status === 'ready') return;
    if (this.redis.status === 'wait' || this.redis.status === 'end') {
      this.connecting ??= this.redis.connect().finally(() => (this.connecting = undefined));
    }
    if (this.connecting) await this.connecting;
    if ((this.redis.status as string) !== 'ready') throw new Error(`Redis not ready (${this.redis.status})`);
  }
}

/** `{index}:{ok|fail|rej|lat}` fields → counts per index (0 ≤ index < limit); malformed fields are ignored */
function parseBuckets(hash: Record<string, string>, limit: number): Map<number, Counts> {
  const out = new Map<number, Counts>();
  for (const [field, raw] of Object.entries(hash ?? {})) {
    const m = /^(\d{1,2}):(ok|fail|rej|lat)$/.exec(field);
    const value = Number(raw);
    if (!m || !Number.isSafeInteger(value) || value < 0) continue;
    const index = Number(m[1]);
    if (index >= limit) continue;
    const counts = out.get(index) ?? { ok: 0, failed: 0, rejected: 0, latencyUs: 0 };
    counts[FIELDS.find(([, name]) => name === m[2])![0]] += value;
    out.set(index, counts);
  }
  return out;
}
