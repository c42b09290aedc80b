/**
 * Contract tests of the local Auth stand-in (auth/api.ts) through the running stack's gateway, with supabase-js
 * as an app uses it: a user created through the local admin route signs in with signInWithPassword, the session's
 * access token carries Supabase Auth's claims and is accepted by getUser, a wrong password gets GoTrue's
 * invalid_credentials answer, the admin route needs the service key, and sign-out works.
 */
import assert from "node:assert/strict";
import { AuthApiError } from "@supabase/supabase-js";
import { decodeJwt } from "jose";
import { PUBLISHABLE_KEY } from "../keys.ts";
import { SUPABASE_URL } from "../../tests/support/stack.ts";
import { anonClient, createUser } from "../../tests/support/users.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false } as const;

Deno.test({ name: "local auth: signInWithPassword, getUser, wrong password, signOut", ...E2E }, async () => {
  const email = `auth-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const id = await createUser(email, "correct horse");

  const client = anonClient();
  const { data, error } = await client.auth.signInWithPassword({ email, password: "correct horse" });
  assert.equal(error, null);
  assert.ok(data.session);
  assert.equal(data.session.token_type, "bearer");
  assert.equal(data.session.expires_in, 3600);
  assert.equal(data.user?.id, id);
  assert.equal(data.user?.email, email);
  const claims = decodeJwt(data.session.access_token);
  assert.equal(claims.sub, id);
  assert.equal(claims.role, "authenticated");
  assert.equal(claims.aud, "authenticated");
  assert.equal(claims.email, email);
  assert.ok(typeof claims.exp === "number" && claims.exp > Date.now() / 1000 + 3000);

  const { data: me, error: meError } = await client.auth.getUser(data.session.access_token);
  assert.equal(meError, null);
  assert.equal(me.user?.id, id);

  // supabase-js sends X-Supabase-Api-Version: 2024-01-01, so GoTrue answers {code, message}; auth-js maps it.
  const wrong = await anonClient().auth.signInWithPassword({ email, password: "wrong" });
  assert.ok(wrong.error instanceof AuthApiError);
  assert.equal(wrong.error.status, 400);
  assert.equal(wrong.error.code, "invalid_credentials");
  assert.equal(wrong.error.message, "Invalid login credentials");
  const unknown = await anonClient().auth.signInWithPassword({
    email: `x${email}`,
    password: "correct horse",
  });
  assert.equal(unknown.error?.code, "invalid_credentials", "an unknown email gets the same answer");

  // Without the version header: GoTrue's initial error shape.
  const raw = await fetch(`${SUPABASE_URL}/auth/v1/token?grant_type=password`, {
    method: "POST",
    headers: { apikey: PUBLISHABLE_KEY, "Content-Type": "application/json" },
    body: JSON.stringify({ email, password: "wrong" }),
  });
  assert.equal(raw.status, 400);
  assert.deepEqual(await raw.json(), {
    code: 400,
    error_code: "invalid_credentials",
    msg: "Invalid login credentials",
  });

  const noToken = await fetch(`${SUPABASE_URL}/auth/v1/user`, { headers: { apikey: PUBLISHABLE_KEY } });
  assert.equal(noToken.status, 401);
  await noToken.body?.cancel();

  const { error: outError } = await client.auth.signOut();
  assert.equal(outError, null);
});

Deno.test({ name: "local auth: the admin route needs the service key", ...E2E }, async () => {
  const response = await fetch(`${SUPABASE_URL}/_local/auth/users`, {
    method: "POST",
    headers: { apikey: PUBLISHABLE_KEY, "Content-Type": "application/json" },
    body: JSON.stringify({ email: "nobody@example.com", password: "whatever1" }),
  });
  assert.equal(response.status, 401);
  await response.body?.cancel();
});
