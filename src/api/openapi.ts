/**
 * The OpenAPI 3.1 description of the HTTP API, built from the command registry and the effective tb_api rules:
 * one path per command (`/mvapireq/NAME`, the URL shape the decoder takes the entry from), GET with URL
 * parameters and POST with a form or JSON body, the authentication parameters, the levels and the answer shapes.
 * Nothing here is written by hand per command, so the description cannot drift from what the server answers.
 */
import type { CommandDef, Level } from './registry.js';
import type { Rule } from './auth/rules.js';

export interface OpenApiInput {
  commands: readonly CommandDef[];
  /** The effective rule of a command (declared defaults overridden by tb_api). */
  rule: (def: CommandDef) => Rule;
  version: string;
  /** Custom SQL APIs of tb_api that no module declares (parameters sparam1…). */
  customOnly?: readonly string[];
}

type Json = Record<string, unknown>;

const LEVEL_NAMES: Record<Level, string> = {
  0: 'default',
  2: 'disabled',
  4: 'srvadmin',
  6: 'admins',
  8: 'owners and resellers',
  10: 'support',
  12: 'all users',
  14: 'public',
};

/** Parameters every command takes: authentication, the answer format and JSONP. */
const COMMON: Array<[name: string, description: string]> = [
  ['authkey', 'API key (apiv2key or httpapikey); needed from untrusted sources when req_key=1'],
  ['authid', 'username, PIN, DID or user id of the caller'],
  ['authpwd', 'password (or PIN) in clear text; prefer authmd5 over plain HTTP'],
  ['authmd5', 'lowercase hex MD5("ck5Gp" + authid + password + apiv2md5salt + authsalt)'],
  ['authsalt', 'a new random value with every request that uses authmd5'],
  ['format', 'answer format: text, cleartext, html, xml, soap, json, jsonp'],
  ['callback', 'JSONP function name (format=jsonp)'],
];

const ANSWER: Json = {
  type: 'object',
  required: ['code', 'status', 'text'],
  properties: {
    code: { type: 'integer', enum: [200, 499], description: '200 success, 499 failure' },
    status: { type: 'string', enum: ['OK', 'ERROR'] },
    text: { type: 'string' },
    fields: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } },
    columns: { type: 'array', items: { type: 'string' } },
    rows: { type: 'array', items: { type: 'object' } },
  },
};

function queryParam(name: string, description: string, required = false): Json {
  return { name, in: 'query', required, description, schema: { type: 'string' } };
}

function describe(def: CommandDef, rule: Rule, available: boolean): string {
  const lines = [
    def.description,
    '',
    `Level (req_user): ${rule.reqUser} (${LEVEL_NAMES[rule.reqUser] ?? rule.reqUser}); ` +
      `API key (req_key): ${rule.reqKey}; trusted sources only (req_ip): ${rule.reqIp}.`,
  ];
  if (def.aliases?.length) lines.push(`Also called: ${def.aliases.join(', ')}.`);
  if (!available) lines.push('', `Not available: the server answers ERROR "${def.unavailable ?? 'not available'}".`);
  if (def.params.length)
    lines.push('', `Positional form: param1…param${def.params.length} = ${def.params.join(', ')} (in this order).`);
  return lines.join('\n');
}

function operation(def: CommandDef, rule: Rule, method: 'get' | 'post', available: boolean): Json {
  const params = def.params.map((p) => queryParam(p, `parameter ${p} of ${def.name}`));
  const op: Json = {
    operationId: `${def.name}_${method}`,
    summary: def.description,
    description: describe(def, rule, available),
    tags: [available ? tagOf(rule.reqUser) : 'not available'],
    'x-voxswitch-level': rule.reqUser,
    'x-voxswitch-reqkey': rule.reqKey,
    'x-voxswitch-reqip': rule.reqIp,
    'x-voxswitch-available': available,
    responses: {
      '200': {
        description: 'the answer (HTTP 200 unless httpstrictresponse=true; the API code is in the body)',
        content: {
          'application/json': { schema: { $ref: '#/components/schemas/Answer' } },
          'text/plain': { schema: { type: 'string' }, example: 'text\r\nOK' },
          'application/xml': { schema: { type: 'string' } },
        },
      },
      '499': { description: 'API Error (only with httpstrictresponse=true)' },
    },
  };
  if (method === 'get') op.parameters = [...COMMON.map(([n, d]) => queryParam(n, d)), ...params];
  else {
    const props: Json = {};
    for (const [n, d] of COMMON) props[n] = { type: 'string', description: d };
    for (const p of def.params) props[p] = { type: 'string' };
    const schema = { type: 'object', properties: props };
    op.requestBody = {
      content: { 'application/x-www-form-urlencoded': { schema }, 'application/json': { schema } },
    };
  }
  return op;
}

function tagOf(level: Level): string {
  if (level === 14) return 'public';
  if (level >= 12) return 'users';
  if (level >= 8) return 'resellers';
  return 'admins';
}

export function buildOpenApi(input: OpenApiInput): Json {
  const paths: Json = {};
  const sorted = [...input.commands].sort((a, b) => a.name.localeCompare(b.name));
  for (const def of sorted) {
    const rule = input.rule(def);
    const available = Boolean(def.run);
    paths[`/mvapireq/${def.name}`] = {
      get: operation(def, rule, 'get', available),
      post: operation(def, rule, 'post', available),
    };
  }
  for (const name of input.customOnly ?? []) {
    const def: CommandDef = { name, params: [], level: 6, description: 'custom SQL API (tb_api)' };
    const op = operation(def, input.rule(def), 'get', true);
    (op.parameters as Json[]).push(queryParam('sparam1', 'first parameter of the SQL template (sparam2… follow)'));
    paths[`/mvapireq/${name}`] = { get: op };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'voxswitch API (Mizu VoIP Server API compatible)',
      version: input.version,
      description:
        'Every command is also reachable as /mvapireq/?apientry=NAME, over WebSocket (mvstwebsock), raw TCP/UDP ' +
        'lines and the old xmapi form; see docs/api.md. Authentication parameters may be sent in the query or ' +
        'the body.',
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'public', description: 'no account needed' },
      { name: 'users', description: 'any authenticated account' },
      { name: 'resellers', description: 'owners and resellers and above' },
      { name: 'admins', description: 'admins and the server admin' },
      { name: 'not available', description: 'declared by the document, answered with ERROR and the reason' },
    ],
    paths,
    components: { schemas: { Answer: ANSWER } },
  };
}
