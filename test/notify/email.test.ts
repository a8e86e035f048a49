/**
 * Email through a real SMTP server (the smtp-server package) started on a
 * free port: envelope, authentication, headers, subject and body checked
 * after decoding the message exactly as it crossed the wire.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { config, run, wire } from './helpers';

interface Mail {
  from: string;
  to: string[];
  user: string | undefined;
  raw: string;
}

async function startSmtp(options: { reject?: () => boolean } = {}) {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === 'alerts' && auth.password === 'smtp-pass-123') callback(null, { user: 'alerts' });
      else callback(new Error('bad credentials'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (options.reject?.()) {
          const err = new Error('mailbox busy') as Error & { responseCode: number };
          err.responseCode = 451;
          callback(err);
          return;
        }
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** headers (unfolded, RFC 2047 decoded, lower-case names) and the decoded text body */
function parseMail(raw: string): { headers: Record<string, string>; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = decodeWords(line.slice(colon + 1).trim());
  }
  let body = raw.slice(split + 4);
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  if (encoding === 'quoted-printable') body = decodeQp(body);
  else if (encoding === 'base64') body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return { headers, body: body.replace(/\r\n/g, '\n') };
}

function decodeQp(text: string): string {
  const bytes: number[] = [];
  const soft = text.replace(/=\r\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(soft[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?utf-8\?([QB])\?([^?]*)\?=/gi, (_m, enc: string, data: string) =>
      enc.toUpperCase() === 'B' ? Buffer.from(data, 'base64').toString('utf8') : decodeQp(data.replace(/_/g, ' ')),
    );
}

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

describe('email target', () => {
  test('a DOWN change arrives as one mail with the right envelope, auth, headers, subject and body', async () => {
    const smtp = await startSmtp();
    cleanups.push(() => smtp.close());
    const cfg = config(`
telemetry: { serviceName: checkout-health }
checks: [ { name: db, kind: postgres, url: "postgres://app:pw-db-9876@127.0.0.1:5432/app", thresholds: { failure: 2 } } ]
notifications:
  - name: mail
    kind: email
    timeout: 5s
    email: { host: 127.0.0.1, port: ${smtp.port}, secure: false, user: alerts, pass: smtp-pass-123, from: "Health <health@example.com>", to: [oncall@example.com, dba@example.com] }
`);
    assert.ok(cfg.secrets.includes('smtp-pass-123'), 'the SMTP password is a secret');
    const { store, service, metrics } = wire(cfg);
    store.record('db', run(true));
    store.record('db', run(false, 'connection to postgres://app:***@127.0.0.1:5432/app refused'));
    store.record('db', run(false, 'connection to postgres://app:***@127.0.0.1:5432/app refused'));
    const at = new Date(store.get('db')!.lastChangeAt!).toISOString();
    await service.idle();

    assert.equal(smtp.mails.length, 1);
    const mail = smtp.mails[0]!;
    assert.equal(mail.from, 'health@example.com');
    assert.deepEqual(mail.to, ['oncall@example.com', 'dba@example.com']);
    assert.equal(mail.user, 'alerts', 'authenticated with the configured user');
    const { headers, body } = parseMail(mail.raw);
    assert.equal(headers.from, 'Health <health@example.com>');
    assert.equal(headers.to, 'oncall@example.com, dba@example.com');
    assert.equal(headers.subject, '[DOWN] db is DOWN (was UP) — checkout-health');
    assert.equal(headers['x-health-check'], 'db');
    assert.equal(headers['x-health-state'], 'DOWN');
    assert.equal(headers['x-health-incident'], 'inc-db');
    assert.match(headers['x-health-event-id'] ?? '', /^[0-9a-f-]{36}$/);
    assert.match(headers['content-type'] ?? '', /^text\/plain; charset=utf-8/);
    assert.equal(
      body,
      [
        'db is DOWN (was UP)',
        '',
        'Check:     db (postgres, critical)',
        'State:     UP → DOWN',
        'Message:   connection to postgres://app:***@127.0.0.1:5432/app refused',
        `Time:      ${at}`,
        'Incident:  inc-db',
        `Service:   checkout-health`,
        '',
      ].join('\n'),
    );
    assert.ok(!mail.raw.includes('pw-db-9876') && !mail.raw.includes('smtp-pass-123'));
    assert.deepEqual(await metrics.counters(), { 'healthcheck.notifications.sent{mail}': 1, 'healthcheck.notification.attempts{mail,success}': 1 });
    await service.close();
  });

  test('an SMTP server refusing with 451 twice: retried, delivered once', async () => {
    let refusals = 2;
    const smtp = await startSmtp({ reject: () => refusals-- > 0 });
    cleanups.push(() => smtp.close());
    const cfg = config(`
checks: [ { name: db, kind: tcp, url: "tcp://127.0.0.1:5432" } ]
notifications:
  - { name: mail, kind: email, retry: { attempts: 3, backoff: { initial: 10ms, max: 20ms } }, email: { host: 127.0.0.1, port: ${smtp.port}, from: health@example.com, to: [oncall@example.com] } }
`);
    const { store, service, metrics } = wire(cfg);
    store.record('db', run(false));
    await service.idle();
    assert.equal(smtp.mails.length, 1);
    assert.equal(parseMail(smtp.mails[0]!.raw).headers.subject, '[DOWN] db is DOWN — health-sidecar');
    assert.deepEqual(await metrics.counters(), { 'healthcheck.notifications.sent{mail}': 1, 'healthcheck.notifications.failed{mail}': 2, 'healthcheck.notification.attempts{mail,failure}': 2, 'healthcheck.notification.attempts{mail,success}': 1 });
    await service.close();
  });
});
