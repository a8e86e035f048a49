import { promises as dnsPromises } from 'node:dns';
import type { CheckConfigOf } from '../config/types';
import { ProbeFailure } from '../errors';
import { abortError, type Probe, type ProbeContext } from './probe';

export type DnsRecordType = CheckConfigOf<'dns'>['recordType'];

/** DNS answers that are the server speaking (the name or the records are not there): a failed result, not an unreachable resolver. */
const ANSWER_CODES: Record<string, string> = {
  ENOTFOUND: 'NXDOMAIN (no such name)',
  ENODATA: 'no records of this type (NODATA)',
  ESERVFAIL: 'SERVFAIL (the resolver could not answer)',
  EREFUSED: 'REFUSED (the resolver refused the query)',
  ENOTIMP: 'NOTIMP (the resolver does not implement this query)',
  EFORMERR: 'FORMERR (the resolver found the query malformed)',
};
/** The resolver could not be reached or did not answer. */
const TRANSPORT_CODES: Record<string, string> = {
  ETIMEOUT: 'no answer from the resolver (timeout)',
  ECONNREFUSED: 'connection refused by the resolver',
  ECANCELLED: 'query cancelled',
};

const SHOWN_ANSWERS = 5;

/** Comparable form of an answer: lower case, no trailing dot, IPv6 in canonical (compressed) form. */
export function normalizeAnswer(type: DnsRecordType, answer: string): string {
  let text = answer.trim();
  if (type === 'AAAA') {
    try {
      return new URL(`http://[${text}]/`).hostname.slice(1, -1);
    } catch {
      return text.toLowerCase();
    }
  }
  if (type === 'TXT') return text;
  text = text.toLowerCase();
  return text.endsWith('.') ? text.slice(0, -1) : text;
}

/** Answers as text, in the order the resolver gave them. */
async function query(resolver: dnsPromises.Resolver, type: DnsRecordType, host: string): Promise<string[]> {
  switch (type) {
    case 'A':
      return resolver.resolve4(host);
    case 'AAAA':
      return resolver.resolve6(host);
    case 'CNAME':
      return resolver.resolveCname(host);
    case 'SRV':
      return (await resolver.resolveSrv(host)).map((r) => `${r.priority} ${r.weight} ${r.port} ${r.name}`);
    case 'TXT':
      return (await resolver.resolveTxt(host)).map((chunks) => chunks.join(''));
  }
}

/** Pure: the verdict on a set of answers given the expected ones (each expected answer must be present; more are fine). */
export function evaluateAnswers(type: DnsRecordType, answers: string[], expected: string[] | undefined): { ok: boolean; missing: string[] } {
  if (!expected?.length) return { ok: answers.length > 0, missing: [] };
  const got = new Set(answers.map((a) => normalizeAnswer(type, a)));
  const missing = expected.filter((e) => !got.has(normalizeAnswer(type, e)));
  return { ok: missing.length === 0, missing };
}

function list(type: DnsRecordType, answers: string[]): string {
  const shown = answers.slice(0, SHOWN_ANSWERS).map((a) => (type === 'TXT' ? JSON.stringify(a) : a));
  return answers.length > SHOWN_ANSWERS ? `${shown.join(', ')} (+${answers.length - SHOWN_ANSWERS} more)` : shown.join(', ');
}

/**
 * dns — resolve `host` for one record type (A, AAAA, CNAME, SRV, TXT) through
 * the configured resolvers (tried in order) or the system's (c-ares reading
 * /etc/resolv.conf; /etc/hosts is not consulted: this checks DNS, not the
 * local name service). A fresh node:dns Resolver per run, so an abort cancels
 * exactly this run's queries. NXDOMAIN, NODATA, SERVFAIL, REFUSED and missing
 * expected answers are failed results; an unreachable or silent resolver
 * rejects.
 */
export function createDnsProbe(check: CheckConfigOf<'dns'>, context: ProbeContext): Probe {
  const type = check.recordType;
  const where = context.redactor.text(`dns ${type} ${check.host}${check.resolver ? ` @${check.resolver.join(',')}` : ''}`);
  const active = new Set<dnsPromises.Resolver>();
  return {
    async run(signal) {
      if (signal.aborted) throw abortError(signal);
      // tries: 1 — the policy owns retries; timeout bounds one query to one resolver
      const resolver = new dnsPromises.Resolver({ timeout: check.timeout, tries: 1 });
      if (check.resolver) resolver.setServers(check.resolver);
      active.add(resolver);
      const onAbort = () => resolver.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      let answers: string[];
      try {
        answers = await query(resolver, type, check.host);
      } catch (err) {
        if (signal.aborted) throw abortError(signal);
        const code = (err as NodeJS.ErrnoException).code ?? '';
        const answer = ANSWER_CODES[code];
        if (answer) return { ok: false, message: `${where}: ${answer}` };
        const words = TRANSPORT_CODES[code];
        throw new ProbeFailure('DNS_FAILED', context.redactor.text(`${where}: ${words ? `${words} (${code})` : (err as Error).message}`));
      } finally {
        signal.removeEventListener('abort', onAbort);
        active.delete(resolver);
      }
      const verdict = evaluateAnswers(type, answers, check.expect.answers);
      if (!answers.length) return { ok: false, message: `${where}: no answers` };
      if (!verdict.ok) return { ok: false, message: `${where}: missing expected ${list(type, verdict.missing)}; got ${list(type, answers)}` };
      return { ok: true, message: `${where}: ${list(type, answers)}` };
    },
    async close() {
      for (const resolver of active) resolver.cancel();
      active.clear();
    },
  };
}
