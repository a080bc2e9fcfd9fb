/**
 * The product token of our Server and User-Agent headers: `voxswitch`, or `voxswitch/VERSION` when the operator
 * asks for it (sipshowversion=true). Scanners read exact versions to pick their exploits, so the default hides it.
 */
import type { DomainServices } from '../domain/deps.js';

export function productToken(s: Pick<DomainServices, 'config' | 'version'>): string {
  return s.config.options.sipshowversion ? `voxswitch/${s.version}` : 'voxswitch';
}
