/**
 * What an authenticated client may do, for both built-in controls: `read` reads models, their
 * metadata and the change stream; `write` also creates, updates and deletes them. A user or token
 * configured without a role has `write` (what every user could do before roles existed).
 */
export type Role = 'read' | 'write';

export const ROLES: readonly Role[] = ['read', 'write'];

export const DEFAULT_ROLE: Role = 'write';

/** Does `role` cover `needed`? (`write` includes `read`.) */
export function allows(role: Role, needed: Role): boolean {
  return needed === 'read' || role === 'write';
}
