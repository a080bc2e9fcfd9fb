/**
 * User status numbers of the API (status / verifyuser): 0 does not exist, 1 offline, 2 online (registered),
 * 3 calling, 4 speaking. 3 and 4 come from the call layer through `CallStates.set`.
 */
export const UserStatus = { missing: 0, offline: 1, online: 2, calling: 3, speaking: 4 } as const;
export type UserStatusNo = 0 | 1 | 2 | 3 | 4;

export const STATUS_NAMES: Record<UserStatusNo, string> = {
  0: 'unknown',
  1: 'offline',
  2: 'online',
  3: 'calling',
  4: 'speaking',
};

export class CallStates {
  private readonly calls = new Map<string, 3 | 4>();
  set(username: string, state: 3 | 4 | null): void {
    if (state === null) this.calls.delete(username);
    else this.calls.set(username, state);
  }
  get(username: string): 3 | 4 | undefined {
    return this.calls.get(username);
  }
}

/** The number for a user: existence and registration known by the caller; a call state wins over "online". */
export function statusNumber(exists: boolean, online: boolean, call: 3 | 4 | undefined): UserStatusNo {
  if (!exists) return 0;
  if (call) return call;
  return online ? 2 : 1;
}
