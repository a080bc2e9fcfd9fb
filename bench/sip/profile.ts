/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function (name, file:line), highest first, and the
 * share of the busy time spent in logging code.
 *
 *   node dist/bench/sip/profile.js FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export function summarise(file: string, top = 25): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  // the logging code: pino and its streams, the rotating file, the log areas' batching
  let logging = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!);
    const dt = p.timeDeltas[i] ?? 0;
    if (!n) continue;
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
    if (/\/node_modules\/(pino|pino-std-serializers|sonic-boom|rotating-file-stream)\/|\/ops\/logs\//.test(f.url))
      logging += dt;
  }
  const idle = (self.get('(idle)') ?? 0) + (self.get('(program)') ?? 0);
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  const busy = total - idle;
  return [
    `  total ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (idle and program excluded)`,
    `  logging code (pino, rotating-file-stream, src/ops/logs): ${((100 * logging) / Math.max(1, busy)).toFixed(2)}% of busy`,
    ...rows.map(
      ([k, v]) =>
        `  ${((100 * v) / Math.max(1, total)).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`,
    ),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(summarise(process.argv[2]!, Number(process.argv[3] ?? 30)));
}
