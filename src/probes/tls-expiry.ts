/**
 * TLS certificate expiry for the probes that speak TLS (http with https URLs,
 * grpc with grpcs URLs): what the server presented (leaf notAfter and the
 * earliest notAfter in its chain), the `tls.minValidity` verdict, and the
 * `healthcheck.tls.cert_expiry` gauge (unix seconds, one series per check and
 * certificate position).
 *
 * The pure parts (certificateExpiry, minValidityVerdict) take plain data; the
 * gauge reads a CertExpiryRegistry (the Sidecar's, passed to each probe in its
 * ProbeContext) that each probe updates after a handshake and clears on close.
 */
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { formatDuration } from '../config/duration';
import { ATTR, ATTR_EXTRA, METRIC } from '../telemetry/semconv';

export interface CertExpiry {
  /** notAfter of the server's own certificate, ms since the epoch */
  leafNotAfter: number;
  /** earliest notAfter over the leaf and every issuer in the chain, ms since the epoch */
  earliestNotAfter: number;
  /** subject CN (or the subject as text) of the certificate that expires first */
  earliestSubject: string;
  /** number of certificates looked at (leaf included) */
  chainLength: number;
}

/** The part of a peer certificate this module reads (node:tls PeerCertificate). */
type CertLike = Pick<PeerCertificate, 'valid_to' | 'subject' | 'fingerprint256'> & { issuerCertificate?: CertLike };

function subjectOf(cert: CertLike): string {
  const subject = cert.subject as unknown as Record<string, string | string[]> | undefined;
  if (!subject) return 'unknown subject';
  const cn = subject.CN;
  if (cn) return `CN=${Array.isArray(cn) ? cn.join(',') : cn}`;
  return Object.entries(subject)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(',') : value}`)
    .join(', ');
}

/**
 * Leaf and earliest expiry of a certificate as returned by
 * `tlsSocket.getPeerCertificate(true)`. The issuer chain ends at a self-signed
 * root whose issuerCertificate is itself; the walk stops at a repeat.
 * Undefined when there is no certificate (empty object: no TLS, or the socket
 * is gone).
 */
export function certificateExpiry(cert: CertLike | DetailedPeerCertificate | undefined | null): CertExpiry | undefined {
  if (!cert || !cert.valid_to) return undefined;
  const leafNotAfter = Date.parse(cert.valid_to);
  if (Number.isNaN(leafNotAfter)) return undefined;
  let earliestNotAfter = leafNotAfter;
  let earliestSubject = subjectOf(cert);
  let chainLength = 0;
  const seen = new Set<string>();
  for (let current: CertLike | undefined = cert; current && current.valid_to; current = current.issuerCertificate) {
    const id = current.fingerprint256 ?? `${chainLength}`;
    if (seen.has(id)) break;
    seen.add(id);
    chainLength++;
    const notAfter = Date.parse(current.valid_to);
    if (!Number.isNaN(notAfter) && notAfter < earliestNotAfter) {
      earliestNotAfter = notAfter;
      earliestSubject = subjectOf(current);
    }
  }
  return { leafNotAfter, earliestNotAfter, earliestSubject, chainLength };
}

export interface MinValidityOptions {
  minValidity?: number;
  minValidityAction?: 'fail' | 'warn';
}

/** "23h 59m", "89d 23h", "expired 2h ago" — coarse on purpose: it goes into probe messages. */
export function describeRemaining(ms: number): string {
  const abs = Math.abs(ms);
  const days = Math.floor(abs / 86_400_000);
  const hours = Math.floor((abs % 86_400_000) / 3_600_000);
  const minutes = Math.floor((abs % 3_600_000) / 60_000);
  const text = days > 0 ? `${days}d ${hours}h` : hours > 0 ? `${hours}h ${minutes}m` : `${minutes}m`;
  return ms < 0 ? `expired ${text} ago` : text;
}

export type ValidityVerdict =
  | { state: 'ok' }
  | { state: 'fail'; message: string }
  | { state: 'warn'; message: string };

/**
 * `tls.minValidity`: the earliest expiry in the chain must be at least this far
 * away. The action decides whether a shortfall fails the probe or only warns
 * (the probe succeeds; the message says why it is worth a look).
 */
export function minValidityVerdict(expiry: CertExpiry | undefined, options: MinValidityOptions, now = Date.now()): ValidityVerdict {
  if (options.minValidity === undefined) return { state: 'ok' };
  if (!expiry) {
    return { state: options.minValidityAction === 'warn' ? 'warn' : 'fail', message: 'no server certificate seen, cannot check tls.minValidity' };
  }
  const remaining = expiry.earliestNotAfter - now;
  if (remaining >= options.minValidity) return { state: 'ok' };
  const which = expiry.earliestNotAfter === expiry.leafNotAfter ? 'certificate' : `chain certificate ${expiry.earliestSubject}`;
  const when = new Date(expiry.earliestNotAfter).toISOString();
  const message =
    remaining < 0
      ? `${which} ${describeRemaining(remaining)} (notAfter ${when}), tls.minValidity is ${formatDuration(options.minValidity)}`
      : `${which} expires in ${describeRemaining(remaining)} (notAfter ${when}), less than tls.minValidity ${formatDuration(options.minValidity)}`;
  return options.minValidityAction === 'warn' ? { state: 'warn', message: `warning: ${message}` } : { state: 'fail', message };
}

// ---------------------------------------------------------------- gauge

interface Entry {
  owner: object;
  kind: string;
  expiry: CertExpiry;
}

export interface CertExpiryObservation {
  value: number;
  attributes: Record<string, string>;
}

/** The handle a probe keeps: record after each handshake, clear on close. */
export interface CertExpiryRecorder {
  record(expiry: CertExpiry): void;
  clear(): void;
}

/**
 * The latest certificate expiry per check, owned by whoever creates the
 * probes (the Sidecar) and handed to them in their ProbeContext; the
 * healthcheck.tls.cert_expiry gauge (telemetry/metrics.ts) reads
 * `observations()` at collection time.
 */
export class CertExpiryRegistry {
  private readonly latest = new Map<string, Entry>();

  /** What the gauge reports right now: two series (leaf, earliest) per check that has seen a certificate. */
  observations(): CertExpiryObservation[] {
    const out: CertExpiryObservation[] = [];
    for (const [name, entry] of [...this.latest.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      const base = { [ATTR.name]: name, [ATTR.kind]: entry.kind };
      out.push({ value: Math.floor(entry.expiry.leafNotAfter / 1000), attributes: { ...base, [ATTR_EXTRA.tlsCertPosition]: 'leaf' } });
      out.push({ value: Math.floor(entry.expiry.earliestNotAfter / 1000), attributes: { ...base, [ATTR_EXTRA.tlsCertPosition]: 'earliest' } });
    }
    return out;
  }

  recorder(checkName: string, kind: string): CertExpiryRecorder {
    const owner = {};
    return {
      record: (expiry) => {
        this.latest.set(checkName, { owner, kind, expiry });
      },
      clear: () => {
        // a reload may already have a new probe for the same name: only remove our own entry
        if (this.latest.get(checkName)?.owner === owner) this.latest.delete(checkName);
      },
    };
  }
}
