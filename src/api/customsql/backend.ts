/** What the runner hands a backend (SQLite worker or PostgreSQL client), and their shared helpers. */
import { CustomSqlError, type CompiledTemplate } from './template.js';

export interface CustomSqlResult {
  columns: string[];
  rows: Array<Record<string, unknown>>;
  changes?: number;
  truncated: boolean;
}

export function timeLimitError(ms: number): CustomSqlError {
  return new CustomSqlError(`custom SQL query exceeded the time limit of ${ms} ms`);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface Job {
  compiled: CompiledTemplate;
  params: unknown[];
  timeoutMs: number;
  resolve(r: CustomSqlResult): void;
  reject(e: unknown): void;
}

export interface Backend {
  execute(job: Job): Promise<CustomSqlResult>;
  close(): Promise<void>;
}
