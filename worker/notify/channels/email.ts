// E-mail over SMTP. Sent by a relay (nodemailer there): a Worker cannot reach a LAN mail
// server, and one SMTP client is enough to keep (see README, Notifications).
import type { ChannelKind } from './kind.ts';
import { plainText } from './kind.ts';

const DEFAULT_PORT = { tls: 465, starttls: 587, none: 25 } as const;

export const email: ChannelKind<'email'> = {
  endpoint: (c) => `smtp://${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port ?? DEFAULT_PORT[c.security]}`,
  render: async (m, c) => ({
    kind: 'smtp',
    server: {
      host: c.host,
      port: c.port ?? DEFAULT_PORT[c.security],
      security: c.security,
      ...(c.user ? { user: c.user } : {}),
      ...(c.password ? { password: c.password } : {}),
      tlsVerify: c.tlsVerify,
    },
    mail: { from: c.from, to: c.to, subject: `[PatchMan] ${m.title}`.replace(/[\r\n]+/g, ' ').slice(0, 200), text: plainText(m) },
  }),
};
