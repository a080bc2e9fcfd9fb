/**
 * The kind and page count of a fax document: PDF (the `/Type /Page` objects) or TIFF (the IFD chain). Anything
 * else is refused: fax services take PDF or TIFF.
 */
import { DomainError } from '../errors.js';

export interface FaxDocument {
  type: 'application/pdf' | 'image/tiff';
  pages: number;
}

/** Pages of a TIFF: the IFD chain walked from the header (loops and out-of-range offsets end the walk). */
export function tiffPages(b: Buffer): number {
  const le = b[0] === 0x49;
  const u16 = (o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  let off = u32(4);
  const seen = new Set<number>();
  let pages = 0;
  while (off >= 8 && off + 2 <= b.length && !seen.has(off) && pages < 10_000) {
    seen.add(off);
    const n = u16(off);
    const next = off + 2 + n * 12;
    if (next + 4 > b.length) break;
    pages++;
    off = u32(next);
  }
  return pages;
}

/** Pages of a PDF: the page objects (`/Type /Page`, not `/Pages`) in the file's text. */
export function pdfPages(b: Buffer): number {
  const text = b.toString('latin1');
  return (text.match(/\/Type\s*\/Page(?![A-Za-z])/g) ?? []).length;
}

export function faxDocument(b: Buffer): FaxDocument {
  if (
    b.length >= 8 &&
    (b.subarray(0, 4).equals(Buffer.from('II*\0')) || b.subarray(0, 4).equals(Buffer.from('MM\0*')))
  ) {
    const pages = tiffPages(b);
    if (pages < 1) throw new DomainError('filename: a TIFF without a readable page');
    return { type: 'image/tiff', pages };
  }
  if (b.subarray(0, 5).toString('latin1') === '%PDF-') {
    return { type: 'application/pdf', pages: Math.max(1, pdfPages(b)) };
  }
  throw new DomainError('filename: not a PDF or TIFF document (fax services take PDF or TIFF)');
}
