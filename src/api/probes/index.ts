/** Builds /metrics and /health and hooks the counters to the gateway (API answers) and the live calls (call ends). */
import type { Services } from '../../services.js';
import type { ApiGateway } from '../gateway.js';
import { Metrics } from './metrics.js';
import { ProbeRoutes } from './routes.js';

export function buildProbes(s: Services, gateway: ApiGateway): ProbeRoutes {
  const metrics = new Metrics({ services: s, isCommand: (n) => gateway.registry.get(n) !== undefined });
  gateway.onAnswered = (entry, r, seconds) => metrics.observeApi(entry, r, seconds);
  const before = s.liveCalls.onEnded;
  s.liveCalls.onEnded = (c, rec) => {
    before?.(c, rec);
    const answered = c.connectAt !== null;
    metrics.observeCall(answered, rec ? rec.cdr.reason : 'unrecorded', rec?.created === true, rec?.cdr.duration ?? 0);
  };
  return new ProbeRoutes(s, metrics);
}
