/** The options of accounts, billing, rating, numbers and the IVR, by their names (merged into optionSchemas). */
import { z } from 'zod';
import { int, str } from './kinds.js';

export const billingOptions = {
  internationalprefix: {
    schema: str,
    def: '00',
    doc: 'dialled prefix for international numbers (normalised to E.164 digits)',
  },
  nationalprefix: { schema: str, def: '0', doc: 'dialled prefix for national numbers' },
  defaultcountrycode: {
    schema: str,
    def: '',
    doc: 'country calling code for national numbers of users without a country (e.g. 1, 36)',
  },
  callbackaccessnumber: {
    schema: str,
    def: '',
    doc: 'the number users call for callback: asks for a destination, refuses 486, calls back',
  },
  accessnumber: {
    schema: str,
    def: '',
    doc:
      'access numbers (DIDs, comma separated): a call to one asks for a PIN (unless the caller is known) and a ' +
      'number to call',
  },
  ivrtimeout: { schema: int(1, 120), def: '10', doc: 'IVR: seconds to wait for the first key of a PIN or number' },
  ivrinterdigit: { schema: int(1, 60), def: '5', doc: 'IVR: seconds without a key that end a PIN or number' },
  ivrpintries: { schema: int(1, 10), def: '3', doc: 'IVR: wrong PINs (access number, room PIN) before goodbye' },
  ivrpinfailmax: {
    schema: int(0, 100000),
    def: '10',
    doc: 'wrong access PINs from one caller number within ivrpinfailwindow before its calls are refused (0: off)',
  },
  ivrpinfailglobal: {
    schema: int(0, 10_000_000),
    def: '300',
    doc: 'wrong access PINs from all callers within ivrpinfailwindow before PIN entry is suspended (0: off)',
  },
  ivrpinfailwindow: {
    schema: int(60, 86400 * 7),
    def: '3600',
    doc: 'seconds the wrong access-number PINs are counted',
  },
  blockedprefixes: {
    schema: str.transform((v, ctx) => {
      const list = v
        .split(/[\s,;]+/)
        .filter(Boolean)
        .map((x) => x.replace(/^\+/, ''));
      const bad = list.find((x) => !/^\d{1,32}$/.test(x));
      if (bad !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `"${bad}" is not a number prefix (digits of the international number, no +)`,
        });
        return z.NEVER;
      }
      return list;
    }),
    def: '',
    doc:
      'destinations (international number prefixes, comma separated) that calls may not reach: refused 403 ' +
      'with a CDR',
  },
  numberlocktime: {
    schema: int(10, 86400 * 30),
    def: '900',
    doc: 'seconds a number reserved by lockphonenumber stays locked',
  },
  confroomfirst: {
    schema: int(1, 99_999_999),
    def: '8000',
    doc: 'first conference room number handed out by getconfroom',
  },
  confmaxparticipants: {
    schema: int(1, 1000),
    def: '20',
    doc: 'participants of one conference room at most (the next caller gets 486 Busy Here)',
  },
  cardprocessorurl: {
    schema: str,
    def: '',
    doc: 'HTTP(S) endpoint of the card processor for cccharge (empty: cccharge disabled)',
  },
  cardprocessorkey: { schema: str, def: '', doc: 'API key sent to the card processor' },
  dbmaxrows: { schema: int(1, 100000), def: '100', doc: 'most rows the db command answers' },
} as const;
