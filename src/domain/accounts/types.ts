/**
 * User types and their place in the hierarchy. `rank` is compared with the API's req_user level:
 * a user may call an API whose level is >= their rank (4 srvadmin, 6 admins, 8 owners/resellers,
 * 10 support, 12 all users, 14 public).
 */
export const UserType = {
  srvadmin: 1,
  admin: 2,
  owner: 3,
  reseller: 4,
  support: 5,
  enduser: 6,
} as const;
export type UserTypeId = (typeof UserType)[keyof typeof UserType];

const ranks: Record<number, number> = { 1: 4, 2: 6, 3: 8, 4: 8, 5: 10, 6: 12 };
const names: Record<number, string> = {
  1: 'srvadmin',
  2: 'admin',
  3: 'owner',
  4: 'reseller',
  5: 'support',
  6: 'enduser',
};

export function rankOf(type: number): number {
  return ranks[type] ?? 12;
}
export function typeName(type: number): string {
  return names[type] ?? 'enduser';
}
/** Accepts a number or a name ("reseller"); undefined when unknown. */
export function parseUserType(v: string): UserTypeId | undefined {
  const t = v.trim().toLowerCase();
  if (/^\d+$/.test(t)) return ranks[Number(t)] ? (Number(t) as UserTypeId) : undefined;
  const hit = Object.entries(names).find(([, n]) => n === t);
  return hit ? (Number(hit[0]) as UserTypeId) : undefined;
}
export function isAdminType(type: number): boolean {
  return type === UserType.srvadmin || type === UserType.admin;
}
