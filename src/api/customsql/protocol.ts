/** IPC messages exchanged between CustomSqlRunner (parent) and the SQLite worker (child.ts). */
import type { CustomSqlKind } from './template.js';

export interface ChildQuery {
  type: 'query';
  id: number;
  text: string;
  params: unknown[];
  kind: CustomSqlKind;
  maxRows: number;
}

export type ChildReply =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'result'; id: number; columns: string[]; rows: Array<Record<string, unknown>>; truncated: boolean }
  | { type: 'changes'; id: number; changes: number }
  | { type: 'error'; id: number; message: string };
