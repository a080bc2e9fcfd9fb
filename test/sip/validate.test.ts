// validateRequest / validateResponse against the RFC 4475 / RFC 5118 expectations.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateRequest, validateResponse, isUnsafeDestination } from '../../src/sip/message/index.js';
import type { Rejection, ValidateOptions } from '../../src/sip/message/index.js';
import { t4475, t5118, req, res } from './helpers.js';

function check(name: string, opts?: ValidateOptions): Rejection | null {
  return validateRequest(req(t4475(name)), opts);
}

describe('validateRequest', () => {
  it('well-formed requests pass', () => {
    for (const n of [
      'wsinv',
      'esc01',
      'escnull',
      'lwsdisp',
      'longreq',
      'dblreq',
      'semiuri',
      'transports',
      'baddate',
      'regaut01',
      'cparam01',
      'cparam02',
      'regescrt',
      'inv2543',
      'zeromf',
      'unksm2',
    ]) {
      assert.equal(check(n), null, n);
    }
    for (const n of [
      'ipv6-good',
      'port-ambiguous',
      'port-unambiguous',
      'via-received-param-with-delim',
      'via-received-param-no-delim',
      'ipv6-in-sdp',
      'mult-ip-in-header',
      'mult-ip-in-sdp',
      'ipv4-mapped-ipv6',
      'ipv6-correct-abnf-2-colons',
    ]) {
      assert.equal(validateRequest(req(t5118(n))), null, n);
    }
  });

  it('intmeth / esc02: unknown method → 501 with Allow', () => {
    for (const n of ['intmeth', 'esc02']) {
      const r = check(n)!;
      assert.equal(r.status, 501, n);
      assert.equal(r.headers[0]!.name, 'Allow');
      assert.match(r.headers[0]!.value, /INVITE/);
    }
  });

  it('known but not allowed method → 405 with Allow', () => {
    const r = check('zeromf', { allowedMethods: ['INVITE', 'ACK', 'BYE', 'CANCEL'] })!;
    assert.equal(r.status, 405);
    assert.deepEqual(r.headers, [{ name: 'Allow', value: 'INVITE, ACK, BYE, CANCEL' }]);
  });

  it('mismatch01 → 400, mismatch02 → 501', () => {
    assert.equal(check('mismatch01')!.status, 400);
    assert.match(check('mismatch01')!.reason, /CSeq/);
    assert.equal(check('mismatch02')!.status, 501);
  });

  it('badbranch → 400 (strict), optional fallback', () => {
    assert.equal(check('badbranch')!.status, 400);
    assert.equal(check('badbranch', { rejectBareCookieBranch: false }), null);
  });

  it('insuf → 400', () => {
    const r = check('insuf')!;
    assert.equal(r.status, 400);
    assert.match(r.reason, /Missing/);
  });

  it('multi01 → 400', () => {
    const r = check('multi01')!;
    assert.equal(r.status, 400);
    assert.match(r.reason, /Multiple/);
  });

  it('unkscm / novelsc → 416', () => {
    assert.equal(check('unkscm')!.status, 416);
    assert.equal(check('novelsc')!.status, 416);
  });

  it('unksm2: registrar answers 400', () => {
    const r = check('unksm2', { role: 'registrar' })!;
    assert.equal(r.status, 400);
    assert.match(r.reason, /SIP or SIPS/);
  });

  it('bext01 → 420 with Unsupported listing all unknown tags', () => {
    const r = check('bext01')!;
    assert.equal(r.status, 420);
    assert.deepEqual(r.headers, [
      {
        name: 'Unsupported',
        value: 'nothingSupportsThis, nothingSupportsThisEither, noProxiesSupportThis, norDoAnyProxiesSupportThis',
      },
    ]);
    const p = check('bext01', { role: 'proxy' })!;
    assert.equal(p.status, 420);
    assert.equal(p.headers[0]!.value, 'noProxiesSupportThis, norDoAnyProxiesSupportThis');
    assert.equal(
      check('bext01', {
        supported: [
          'nothingSupportsThis',
          'nothingSupportsThisEither',
          'noProxiesSupportThis',
          'norDoAnyProxiesSupportThis',
        ],
      }),
      null,
    );
  });

  it('invut → 415 with Accept', () => {
    const r = check('invut')!;
    assert.equal(r.status, 415);
    assert.deepEqual(r.headers, [{ name: 'Accept', value: 'application/sdp' }]);
  });

  it('sdp01 → 406', () => {
    assert.equal(check('sdp01')!.status, 406);
  });

  it('zeromf: a UAS processes it; a proxy answers 483 for non-OPTIONS', () => {
    assert.equal(check('zeromf'), null);
    assert.equal(check('zeromf', { role: 'proxy' }), null);
    const m = req(t4475('zeromf'));
    m.method = 'MESSAGE';
    m.core!.cseq!.method = 'MESSAGE';
    assert.equal(validateRequest(m, { role: 'proxy' })!.status, 483);
  });

  it('mpart01: endpoint without multipart support → 415; with it → ok', () => {
    assert.equal(check('mpart01')!.status, 415);
    assert.equal(check('mpart01', { acceptTypes: ['application/sdp', 'multipart/mixed'] }), null);
  });
});

describe('validateResponse', () => {
  it('bcast: UAC drops (2 Vias), proxy drops (broadcast next hop)', () => {
    const m = res(t4475('bcast'));
    assert.equal(validateResponse(m)!.drop, true);
    assert.match(validateResponse(m, { role: 'proxy' })!.reason, /broadcast/);
  });

  it('noreason / unreason pass at the UAC', () => {
    assert.equal(validateResponse(res(t4475('noreason'))), null);
    assert.equal(validateResponse(res(t4475('unreason'))), null);
  });

  it('unsafe destinations', () => {
    assert.ok(isUnsafeDestination('255.255.255.255'));
    assert.ok(isUnsafeDestination('224.0.0.1'));
    assert.ok(isUnsafeDestination('0.0.0.0'));
    assert.ok(isUnsafeDestination('[ff02::1]'));
    assert.ok(!isUnsafeDestination('192.0.2.1'));
    assert.ok(!isUnsafeDestination('example.com'));
  });
});
