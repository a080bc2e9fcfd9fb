/** The options of e-mail (the SMTP relay), fax and webhooks, by their names (merged into optionSchemas). */
import { z } from 'zod';
import { bool, int, str, nameList } from './kinds.js';

export const messagingOptions = {
  // --- e-mail (SMTP relay), fax, webhooks ---
  smtphost: { schema: str, def: '', doc: 'SMTP relay host for sendmail/asendemail/fax by e-mail (empty: e-mail off)' },
  smtpport: { schema: int(1, 65535), def: '587', doc: 'SMTP relay port (587 submission, 465 implicit TLS, 25)' },
  smtpsecure: {
    schema: z.enum(['none', 'starttls', 'tls']),
    def: 'starttls',
    doc: 'SMTP transport security: none, starttls (required, certificate checked) or tls (implicit, port 465)',
  },
  smtpuser: { schema: str, def: '', doc: 'SMTP AUTH user name (empty: no authentication)' },
  smtppassword: { schema: str, def: '', doc: 'SMTP AUTH password (secret: shown masked, never logged)' },
  smtpfrom: { schema: str, def: '', doc: 'default sender address (used when from is empty, and by notices)' },
  lowcreditlimit: {
    schema: str.refine((v) => /^\d{1,9}(\.\d{1,6})?$/.test(v), { message: 'expected a decimal amount' }),
    def: '0',
    doc:
      'e-mail an account (its tb_users e-mail) once when a debit takes its credit below this amount (in the ' +
      "account's currency); again only after the credit was back at or above it (0: off; needs smtphost, smtpfrom)",
  },
  dailyreportemail: {
    schema: nameList,
    def: '',
    doc: 'addresses the daily report is e-mailed to (dailymaint and the dailyreport command; empty: kept on disk only)',
  },
  smtpallowfrom: {
    schema: nameList,
    def: 'own,default',
    doc:
      'from-addresses users (not admins) may send from: own (their account e-mail), default (smtpfrom), ' +
      '@domain (any address there), an address, or any',
  },
  smtptimeout: { schema: int(1, 600), def: '30', doc: 'seconds for the SMTP connection, greeting and each command' },
  smtpcafile: { schema: str, def: '', doc: 'extra CA certificate (PEM, relative to the data dir) for the relay' },
  smtpretries: { schema: int(1, 100), def: '6', doc: 'send attempts of an e-mail before it fails' },
  smtpretrydelay: {
    schema: int(0, 86400),
    def: '60',
    doc: 'seconds before the first retry of an e-mail after a temporary error; doubled each attempt (max 6 h)',
  },
  smtpmaxperhour: {
    schema: int(0, 1_000_000),
    def: '100',
    doc: 'e-mails (sendmail) and faxes one non-admin user may queue per hour (0: no limit)',
  },
  mailqueueinterval: {
    schema: int(0, 86400),
    def: '10',
    doc: 'seconds between runs of the e-mail, fax and webhook queues (0: only checkmails runs them)',
  },
  faxmode: {
    schema: z.enum(['none', 'email', 'http']),
    def: 'none',
    doc: 'sendfax: none (off; T.38 over SIP is not supported), email (to NUMBER@faxemaildomain), http (faxhttpurl)',
  },
  faxemaildomain: { schema: str, def: '', doc: 'e-mail-to-fax gateway domain: faxes go to NUMBER@domain' },
  faxhttpurl: {
    schema: str,
    def: '',
    doc: 'HTTP fax API: URL template with {to} and {from}; the file is POSTed as the body',
  },
  faxhttpauth: { schema: str, def: '', doc: 'Authorization header value for faxhttpurl (secret)' },
  faxmaxsize: { schema: int(1, 100 * 1024 * 1024), def: '10485760', doc: 'largest fax file in bytes' },
  faxprice: {
    schema: str.refine((v) => /^\d{1,9}(\.\d{1,6})?$/.test(v), { message: 'expected a decimal amount' }),
    def: '0',
    doc: "price of a fax in the sender's currency, per page or per fax (faxpriceper); 0: free",
  },
  faxpriceper: { schema: z.enum(['page', 'fax']), def: 'page', doc: 'faxprice is per page or per fax' },
  faxretries: { schema: int(1, 100), def: '5', doc: 'attempts of a fax to the HTTP fax API before it fails' },
  faxretrydelay: {
    schema: int(0, 86400),
    def: '60',
    doc: 'seconds before the first retry of a fax to the HTTP fax API; doubled each attempt (max 6 h)',
  },
  webhookretries: { schema: int(1, 50), def: '8', doc: 'delivery attempts of a webhook event before it fails' },
  webhookretrydelay: {
    schema: int(0, 86400),
    def: '10',
    doc: 'seconds before the first webhook retry; doubled each attempt (max 6 h)',
  },
  webhooktimeout: { schema: int(1, 120), def: '10', doc: 'seconds a webhook receiver has to answer' },
  webhookallowprivate: {
    schema: bool,
    def: 'false',
    doc: 'allow webhook URLs on link-local/metadata addresses (169.254.x.x, fe80::)',
  },
} as const;
