/** Live calls and credit reservations (see livecalls.ts). */
export { LiveCalls } from './livecalls.js';
export * from './charging.js';
export type {
  LiveCall,
  LiveState,
  ReserveInput,
  Reservation,
  FinishInput,
  LiveCallsOptions,
  CallStats,
} from './livecalls.js';
