declare module 'autocannon' {
  namespace autocannon {
    type Options = Record<string, unknown>;
    interface Result {
      requests: { average: number };
      latency: { p50: number; p99: number; max: number };
      '2xx': number;
      non2xx: number;
      errors: number;
      timeouts: number;
    }
  }
  function autocannon(o: autocannon.Options): Promise<autocannon.Result>;
  export default autocannon;
}
