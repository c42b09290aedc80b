/**
 * Signed-in users for the end-to-end tests: their JWT claims as Supabase Auth issues them, a Storage client
 * acting with their access token (what supabase-js does after sign-in), SQL run exactly as PostgREST runs
 * a request for them (`set local role` + `request.jwt.claims`, always rolled back), and real users of the local
 * Auth stand-in (created through its local-only admin route, signed in with supabase-js).
 */
import { createClient } from "@supabase/supabase-js";
import { PUBLISHABLE_KEY, SECRET_KEY, signJwt } from "../../local-stack/keys.ts";
import { BUCKET, type Sql, SUPABASE_URL } from "./stack.ts";

export type Claims = Record<string, unknown>;
export type Outcome = { rows: Record<string, unknown>[] } | {
  code: string;
  message: string;
  detail?: string;
};

const ROLLBACK = Symbol("rollback");

/** Claims of a signed-in user, as Supabase Auth issues them. */
export function userClaims(sub: string): Claims {
  return {
    iss: "supabase-demo",
    sub,
    aud: "authenticated",
    role: "authenticated",
    exp: Math.floor(Date.now() / 1000) + 3600,
  };
}

/** A user's access token (signed with the local stack's JWT secret). */
export function userJwt(sub: string): Promise<string> {
  return signJwt(userClaims(sub));
}

/**
 * Runs `text` as PostgREST runs a request: in a transaction, as `role`, with the JWT's claims in
 * request.jwt.claims. Always rolled back, so a write that wrongly succeeds changes nothing.
 */
export async function runAs(
  sql: Sql,
  role: "anon" | "authenticated",
  claims: Claims,
  text: string,
): Promise<Outcome> {
  let outcome: Outcome | undefined;
  try {
    await sql.begin(async (tx) => {
      await tx.unsafe(`set local role ${role}`);
      await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
      outcome = { rows: await tx.unsafe(text) };
      throw ROLLBACK;
    });
  } catch (error) {
    if (error !== ROLLBACK) {
      const e = error as { code?: string; message?: string; detail?: string };
      outcome = { code: e.code ?? "?", message: e.message ?? String(error), detail: e.detail };
    }
  }
  return outcome!;
}

/** A Storage client acting with a user's access token (what supabase-js does after sign-in). */
export function userStorage(jwt: string) {
  return createClient(SUPABASE_URL, PUBLISHABLE_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: { headers: { Authorization: `Bearer ${jwt}` } },
  }).storage.from(BUCKET);
}

/** A user of the local Auth stand-in, signed in with supabase-js: their id, email and access token. */
export interface SignedInUser {
  id: string;
  email: string;
  accessToken: string;
}

/** A supabase-js client of the local stack with the publishable key and no stored session. */
export function anonClient() {
  return createClient(SUPABASE_URL, PUBLISHABLE_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
  });
}

/** Creates a user through the local-only admin route (POST /_local/auth/users) and returns its id. */
export async function createUser(email: string, password: string): Promise<string> {
  const response = await fetch(`${SUPABASE_URL}/_local/auth/users`, {
    method: "POST",
    headers: {
      apikey: SECRET_KEY,
      Authorization: `Bearer ${SECRET_KEY}`,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({ email, password }),
  });
  const body = await response.json();
  if (response.status !== 201) {
    throw new Error(`creating ${email} answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body.id;
}

/** A new user with a unique email, signed in with supabase-js signInWithPassword. */
export async function newSignedInUser(name: string): Promise<SignedInUser> {
  const email = `${name}-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const password = `pw-${crypto.randomUUID()}`;
  const id = await createUser(email, password);
  const { data, error } = await anonClient().auth.signInWithPassword({ email, password });
  if (error || !data.session) throw new Error(`signing ${email} in failed: ${error?.message}`);
  return { id, email, accessToken: data.session.access_token };
}
