/**
 * The old HTTP API (xmapi/COMMAND?key=SERVERKEY&…) mapped onto the new commands, as the document promises.
 * Answers are `OK` / `ERROR:reason`; with httpstrictresponse the old HTTP codes are used.
 */
export interface LegacyMapped {
  entry: string;
  params: Record<string, string>;
}

const COMMANDS: Record<string, string> = {
  p2p: 'p2p',
  sms: 'sms',
  cb: 'callback',
  callback: 'callback',
  balance: 'balance',
  rating: 'rating',
  addcredit: 'addcredit',
  adduser: 'newuseri',
};

/** Undefined for a command the old API did not have (answered 406). */
export function mapLegacy(command: string, raw: Record<string, string>): LegacyMapped | undefined {
  const entry = COMMANDS[command.toLowerCase()];
  if (!entry) return undefined;
  const { now: _now, key, username, password, pincode, number, number1, number2, rechargecode, ...rest } = raw;
  const p: Record<string, string> = { ...rest };
  if (key !== undefined) p.authkey = key;
  if (entry === 'newuseri') {
    if (username !== undefined) p.u_username = username;
    if (password !== undefined) p.u_password = password;
    for (const f of ['name', 'email', 'phone', 'currency', 'country', 'address', 'credit'])
      if (rest[f] !== undefined) p[`u_${f}`] = rest[f]!;
  } else {
    if (username !== undefined) p.authid = username;
    if (password !== undefined) p.authpwd = password;
    if (pincode !== undefined && entry !== 'addcredit') {
      if (username === undefined) p.authid = pincode;
      else p.authpwd ??= pincode;
    }
  }
  switch (entry) {
    case 'p2p':
      if (number1 ?? number) p.bnum = (number1 ?? number)!;
      if (number2) p.cnum = number2;
      break;
    case 'callback':
      if (number ?? number1) p.num = (number ?? number1)!;
      break;
    case 'rating':
      if (number ?? number1) p.bnum = (number ?? number1)!;
      break;
    case 'sms':
      if (number ?? number1) p.bnum ??= (number ?? number1)!;
      break;
    case 'addcredit':
      if (rechargecode ?? pincode) p.pin = (rechargecode ?? pincode)!;
      if (number ?? number2) p.bnum = (number ?? number2)!;
      break;
  }
  return { entry, params: p };
}
