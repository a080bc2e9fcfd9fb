/**
 * Presence documents (RFC 3863 PIDF, application/pidf+xml): building one for a user and reading the basic status
 * and note out of a published one. A deliberately small reader (no XML library): namespace prefixes are accepted,
 * entities are decoded, DOCTYPE/ENTITY declarations are refused (no entity expansion attacks).
 */

export interface PresenceInfo {
  /** open / closed */
  basic: 'open' | 'closed';
  /** Free text (e.g. "Away", "In a meeting"). */
  note?: string;
}

export function xmlEscape(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function xmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
    }
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

/** A PIDF document for `entity` (sip:user@domain). */
export function buildPidf(entity: string, info: PresenceInfo, tupleId = 't1'): string {
  const note = info.note ? `<note>${xmlEscape(info.note)}</note>` : '';
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n' +
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${xmlEscape(entity)}">\r\n` +
    `<tuple id="${xmlEscape(tupleId)}"><status><basic>${info.basic}</basic></status>${note}</tuple>\r\n` +
    `${note}</presence>\r\n`
  );
}

function elementText(xml: string, local: string): string | undefined {
  // <basic>, <pidf:basic>, <x:note xml:lang="en">
  const re = new RegExp(
    `<(?:[A-Za-z_][\\w.-]*:)?${local}(?:\\s[^>]*)?>([^<]*)</(?:[A-Za-z_][\\w.-]*:)?${local}\\s*>`,
    'i',
  );
  const m = re.exec(xml);
  return m ? xmlUnescape(m[1]!).trim() : undefined;
}

export class PidfError extends Error {}

/** Reads the first tuple's basic status and the first note. Throws PidfError when the document is not PIDF. */
export function parsePidf(xml: string, maxLen = 65536): PresenceInfo {
  if (xml.length > maxLen) throw new PidfError('PIDF document too large');
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new PidfError('DOCTYPE/ENTITY declarations are not accepted');
  if (!/<(?:[A-Za-z_][\w.-]*:)?presence[\s>]/.test(xml) || !/urn:ietf:params:xml:ns:pidf/.test(xml))
    throw new PidfError('not a PIDF presence document');
  const basic = elementText(xml, 'basic')?.toLowerCase();
  if (basic !== undefined && basic !== 'open' && basic !== 'closed')
    throw new PidfError(`bad <basic> value "${basic}"`);
  const note = elementText(xml, 'note') ?? elementText(xml, 'activities');
  const info: PresenceInfo = { basic: basic === 'closed' ? 'closed' : 'open' };
  if (note) info.note = note.slice(0, 512);
  return info;
}
