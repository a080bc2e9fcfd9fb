import type { ApiRequest, Source } from '../../src/api/types.js';

export function src(ip: string, extra: Partial<Source> = {}): Source {
  return { transport: 'http', ip, port: 40000, browser: false, ...extra };
}

export function req(
  entry: string,
  params: Record<string, string>,
  source: Source,
  extra: Partial<ApiRequest> = {},
): ApiRequest {
  return { entry, params, positional: [], format: 'text', source, ...extra };
}
