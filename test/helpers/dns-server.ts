/**
 * A real DNS server on 127.0.0.1 (UDP, dns2) answering from a zone given by
 * the test: used by the dns probe tests and by the docs test (the stand-in for
 * a cluster's DNS).
 */
// dns2 ships no type declarations: the little of it used here.
interface Dns2Question {
  name: string;
  type: number;
}
interface Dns2Packet {
  header: { rcode: number };
  questions: Dns2Question[];
  answers: Record<string, unknown>[];
}
interface Dns2Server {
  listen(options: { udp: { port: number; address: string; type: 'udp4' } }): Promise<{ udp: { port: number } }>;
  close(): Promise<void>;
}
interface Dns2 {
  createServer(options: { udp: boolean; handle: (request: Dns2Packet, send: (response: Dns2Packet) => void) => void }): Dns2Server;
  Packet: {
    TYPE: Record<'A' | 'AAAA' | 'CNAME' | 'SRV' | 'TXT', number>;
    CLASS: { IN: number };
    createResponseFromRequest(request: Dns2Packet): Dns2Packet;
  };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dns2 = require('dns2') as Dns2;
export const { Packet } = dns2;

export type Zone = Record<string, { rcode?: number; silent?: boolean; records?: Record<string, unknown>[] }>;

/** A DNS server on 127.0.0.1 (UDP) answering from `zone` (key: "name TYPE", or "name" for rcode/silence). */
export async function startDnsServer(zone: Zone): Promise<{ port: number; queries: string[]; close(): Promise<void> }> {
  const queries: string[] = [];
  const typeName = (type: number) => Object.entries(Packet.TYPE).find(([, v]) => v === type)?.[0] ?? String(type);
  const server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const [question] = request.questions;
      if (!question) return;
      const name = question.name.toLowerCase();
      queries.push(`${name} ${typeName(question.type)}`);
      const entry = zone[`${name} ${typeName(question.type)}`] ?? zone[name];
      if (entry?.silent) return;
      const response = Packet.createResponseFromRequest(request);
      if (!entry && !Object.keys(zone).some((key) => key.startsWith(`${name} `))) response.header.rcode = 3; // NXDOMAIN
      if (entry?.rcode !== undefined) response.header.rcode = entry.rcode;
      for (const record of entry?.records ?? []) response.answers.push({ name: question.name, class: Packet.CLASS.IN, ttl: 30, type: question.type, ...record });
      send(response);
    },
  });
  const address = await server.listen({ udp: { port: 0, address: '127.0.0.1', type: 'udp4' } });
  return { port: address.udp.port, queries, close: () => server.close() };
}

