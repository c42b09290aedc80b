/**
 * SQL as a signed-in user: what PostgREST does for each request, so row-level security decides what the client
 * API answers (csv_import_api's views are security_invoker; cancel_import checks auth.uid()).
 *
 * Invariants:
 * - One transaction per call: `set local role authenticated`, the token's claims in request.jwt.claims (local to
 *   the transaction, as PostgREST sets them), a statement timeout, then the caller's queries; the role and
 *   claims end with the transaction, so a pooled connection never keeps them.
 * - The claims are the ones Auth verified (platform/user_auth.ts); nothing else is trusted for the user's id.
 */
import type { Sql } from "../platform/db.ts";

/** How long one statement of a user's request may run. */
export const USER_STATEMENT_TIMEOUT = "10s";

/** Runs `work` in a transaction as role authenticated with `claims` as request.jwt.claims. */
export async function asUser<T>(
  sql: Sql,
  claims: Record<string, unknown>,
  work: (tx: Sql) => Promise<T>,
): Promise<T> {
  return await sql.begin(async (tx) => {
    await tx.unsafe("set local role authenticated");
    await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                    set_config('statement_timeout', ${USER_STATEMENT_TIMEOUT}, true)`;
    return await work(tx as unknown as Sql);
  }) as T;
}
