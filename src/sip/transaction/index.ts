export type { ServerTransaction, ClientTransaction, TxEnv, TimerValues } from './types.js';
export { TransactionLayer, serverKey, clientKey, replyTarget } from './layer.js';
export type { TuHandlers } from './layer.js';
export { InviteServerTx, NonInviteServerTx } from './server.js';
export { InviteClientTx, NonInviteClientTx, buildAck, buildCancel } from './client.js';
export { RealTimers, FakeTimers, TimerWheel } from './timers.js';
export type { TimerService, TimerHandle } from './timers.js';
