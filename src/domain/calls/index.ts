/** Live calls and credit reservations (see livecalls.ts). */
export { LiveCalls, liveCallsFor } from './livecalls.js';
export type {
  LiveCall,
  LiveState,
  ReserveInput,
  Reservation,
  FinishInput,
  LiveCallsOptions,
  CallStats,
} from './livecalls.js';
