// An API token answers to the person who made it: it works only while that user exists and
// is enabled, with at most that user's current role, and it is revoked when the user is
// deleted or disabled. A token made with a token answers to that token's person.
import { and, eq, isNull, or, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/sqlite-core';
import type { Identity } from '../env.ts';
import { schema, type Db } from '../db/index.ts';
import { lowerRole, type Role } from './policy.ts';

const { apiTokens, users } = schema;

type TokenRow = typeof apiTokens.$inferSelect;

/** The user a new token will answer to, or null when no person made it (setup, tests). */
export async function tokenOwnerFor(db: Db, identity: Identity): Promise<string | null> {
  if (identity.kind !== 'token') return identity.id;
  const maker = await db.query.apiTokens.findFirst({ where: eq(apiTokens.id, identity.id) });
  return maker?.createdByUserId ?? null;
}

/** What a token may do now: its own role capped by its owner's current role; null when its
 * owner is gone or disabled. Tokens from before owners were recorded are matched by the
 * creator's user name; a token nobody made (no owner) keeps its own role. */
export async function effectiveTokenRole(db: Db, row: TokenRow): Promise<Role | null> {
  const owner = row.createdByUserId
    ? await db.query.users.findFirst({ where: eq(users.id, row.createdByUserId) })
    : row.createdBy && !row.createdBy.startsWith('token:')
      ? await db.query.users.findFirst({ where: eq(users.username, row.createdBy) })
      : undefined;
  return roleWithOwner(row, owner);
}

type Owner = { role: Role; disabledAt: number | null };

/** The rule of effectiveTokenRole, given the owner as found (undefined: none found). */
function roleWithOwner(row: TokenRow, owner: Owner | null | undefined): Role | null {
  if (row.createdByUserId && !owner) return null;
  if (!owner) return row.role;
  if (owner.disabledAt) return null;
  return lowerRole(row.role, owner.role);
}

const owner = alias(users, 'owner');

/** The token with this hash joined with its owner by the same rule as effectiveTokenRole, as
 * one query that can join a D1 batch: it runs on every API call a script makes. The owner's
 * columns are named apart (owner_role, owner_disabled_at): inside a D1 batch drizzle reads
 * rows by column name, and two columns called `role` would overwrite each other. */
export function tokenQuery(db: Db, tokenHash: string) {
  return db
    .select({
      row: apiTokens,
      ownerRole: sql<Role | null>`${owner.role}`.as('owner_role'),
      ownerDisabledAt: sql<number | null>`${owner.disabledAt}`.as('owner_disabled_at'),
    })
    .from(apiTokens)
    .leftJoin(
      owner,
      sql`case when ${apiTokens.createdByUserId} is not null then ${owner.id} = ${apiTokens.createdByUserId}
        else ${apiTokens.createdBy} not like 'token:%' and ${owner.username} = ${apiTokens.createdBy} end`,
    )
    .where(eq(apiTokens.tokenHash, tokenHash));
}

/** What tokenQuery found: the token and what it may do now (null: nothing), or null. */
export function tokenFrom(rows: Awaited<ReturnType<typeof tokenQuery>>): { row: TokenRow; role: Role | null } | null {
  const found = rows[0];
  if (!found) return null;
  // an owner's role is never null, so a null one means no owner row was found
  const owner = found.ownerRole === null ? undefined : { role: found.ownerRole, disabledAt: found.ownerDisabledAt };
  return { row: found.row, role: roleWithOwner(found.row, owner) };
}

/** Revoke every live token a user owns (the user is being deleted or disabled). */
export async function revokeTokensOf(db: Db, user: { id: string; username: string }): Promise<void> {
  await db
    .update(apiTokens)
    .set({ revokedAt: Date.now() })
    .where(and(isNull(apiTokens.revokedAt), or(eq(apiTokens.createdByUserId, user.id), and(isNull(apiTokens.createdByUserId), eq(apiTokens.createdBy, user.username)))));
}
