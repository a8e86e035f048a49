import type { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import { z } from 'zod';
import { commonCheck } from '../config/schema';
import type { KindCheckConfig } from '../config/types';
import { ProbeFailure, PROBE_ERROR, probeErrorCode } from '../errors';
import { abortError, type Probe, type ProbeContext, type ProbeKind } from './probe';

/** IPv4, IPv4:port, IPv6, [IPv6] or [IPv6]:port: node:dns Resolver.setServers takes IP addresses only. */
const RESOLVER = /^(?:(\d{1,3}(?:\.\d{1,3}){3})|\[([0-9a-fA-F:.]+)\]|([0-9a-fA-F:]*:[0-9a-fA-F:.]*))(?::(\d{1,5}))?$/;
const resolverAddress = z.string().refine(
  (s) => {
    const m = RESOLVER.exec(s);
    if (!m) return false;
    const ip = m[1] ?? m[2] ?? m[3]!;
    if (m[3] !== undefined && m[4] !== undefined) return false; // bare IPv6 with :port is ambiguous; use [v6]:port
    const port = m[4] === undefined ? 53 : Number(m[4]);
    return isIP(ip) !== 0 && port >= 1 && port <= 65535;
  },
  { error: 'must be an IP address with an optional port: 10.0.0.10, 10.0.0.10:53, [fd00::10]:53' },
);
const DNS_NAME = /^(?=.{1,253}\.?$)(?:(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\.)*(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\.?$/;

const schema = z.strictObject({
  ...commonCheck,
  kind: z.literal('dns'),
  host: z.string({ error: 'is required' }).regex(DNS_NAME, { error: 'must be a DNS name such as api.example.com' }).describe('the name to resolve'),
  recordType: z.enum(['A', 'AAAA', 'CNAME', 'SRV', 'TXT']).default('A'),
  resolver: z
    .union([resolverAddress, z.array(resolverAddress).min(1)])
    .optional()
    .transform((r) => (r === undefined ? undefined : Array.isArray(r) ? r : [r]))
    .describe('resolver(s) to ask instead of the system ones (/etc/resolv.conf), tried in order'),
  expect: z
    .strictObject({
      answers: z
        .array(z.string().min(1))
        .min(1)
        .optional()
        .describe('each must be among the answers (A/AAAA: address, CNAME: name, SRV: "priority weight port target", TXT: the joined strings)'),
    })
    .prefault({}),
});

export type DnsCheckConfig = KindCheckConfig<typeof schema>;
export type DnsRecordType = DnsCheckConfig['recordType'];

const target = (check: DnsCheckConfig) => `dns ${check.recordType} ${check.host}${check.resolver ? ` @${check.resolver.join(',')}` : ''}`;

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
function createDnsProbe(check: DnsCheckConfig, context: ProbeContext): Probe {
  const type = check.recordType;
  const where = context.redactor.text(target(check));
  // node:dns (c-ares resolver bindings) loads with the first dns check, not with every sidecar
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Resolver } = (require('node:dns') as typeof import('node:dns')).promises;
  const active = new Set<dnsPromises.Resolver>();
  return {
    async run(signal) {
      if (signal.aborted) throw abortError(signal);
      // tries: 1 — the policy owns retries; timeout bounds one query to one resolver
      const resolver = new Resolver({ timeout: check.timeout, tries: 1 });
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
        throw new ProbeFailure(words ? PROBE_ERROR.connect : probeErrorCode(err), context.redactor.text(`${where}: ${words ? `${words} (${code})` : (err as Error).message}`), { cause: err });
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

export const dnsKind: ProbeKind<DnsCheckConfig> = {
  kind: 'dns',
  schema,
  create: createDnsProbe,
  targetField: 'host',
  placeholder: 'unset.invalid',
  target,
  secrets: () => [], // no URL, no credentials
  redact: (check) => check,
};
