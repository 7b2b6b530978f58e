/**
 * The configured users and the login check. Passwords are configured as the SHA-256 hex of the
 * clear password, and AIMM's client sends that hex. The check compares SHA-256 digests of both
 * sides with `crypto.timingSafeEqual` (equal-length buffers), and always walks every user, so its
 * timing tells neither which part was wrong nor where in the list a user is.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { DEFAULT_ROLE, type Role } from '../roles.js';

export interface UserConf {
  username: string;
  /** SHA-256 hex of the clear password. */
  password: string;
  /** Default `write`. */
  role?: Role;
}

/** Constant-time string equality (the time depends on neither the contents nor the lengths' match). */
export function constantTimeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export type Compare = (given: string, expected: string) => boolean;

export class Users {
  private readonly users: readonly Required<UserConf>[];
  /** With the default comparison: each user's name and password digests, computed once. */
  private readonly digests: readonly { name: Buffer; password: Buffer; role: Role }[] | null;

  constructor(
    users: readonly UserConf[],
    private readonly compare: Compare = constantTimeEqual,
  ) {
    this.users = users.map((u) => ({
      username: u.username,
      password: u.password.toLowerCase(),
      role: u.role ?? DEFAULT_ROLE,
    }));
    this.digests =
      compare === constantTimeEqual
        ? this.users.map((u) => ({
            name: digest(u.username),
            password: digest(u.password),
            role: u.role,
          }))
        : null;
  }

  get size(): number {
    return this.users.length;
  }

  /** True when `username` and `passwordHex` (SHA-256 hex, any case) match a configured user. */
  check(username: string, passwordHex: string): boolean {
    return this.authenticate(username, passwordHex) !== null;
  }

  /** The role of the user `username` and `passwordHex` match, or null (same walk as check). */
  authenticate(username: string, passwordHex: string): Role | null {
    const pw = passwordHex.toLowerCase();
    let role: Role | null = null;
    if (this.digests !== null) {
      // constantTimeEqual with the configured side's digests precomputed (the HTTP control checks
      // on every request): the same comparisons, a quarter of the hashing.
      const name = digest(username);
      const password = digest(pw);
      for (const u of this.digests) {
        const nameOk = timingSafeEqual(name, u.name);
        const pwOk = timingSafeEqual(password, u.password);
        if (nameOk && pwOk && role === null) role = u.role;
      }
      return role;
    }
    for (const u of this.users) {
      // Both comparisons run for every user: no early exit on a name or a match.
      const nameOk = this.compare(username, u.username);
      const pwOk = this.compare(pw, u.password);
      if (nameOk && pwOk && role === null) role = u.role;
    }
    return role;
  }
}

/** The SHA-256 hex that clients send (and configs store) for a clear password. */
export function hashPassword(clear: string): string {
  return createHash('sha256').update(clear, 'utf8').digest('hex');
}
