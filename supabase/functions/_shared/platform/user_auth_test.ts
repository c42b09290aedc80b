import assert from "node:assert/strict";
import { jwtClaims, signedInUser } from "./user_auth.ts";

const b64 = (value: unknown) =>
  btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(value))))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
const token = (claims: Record<string, unknown>) => `${b64({ alg: "HS256" })}.${b64(claims)}.signature`;
const USER_ID = "a17a17a1-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const req = (authorization?: string) =>
  new Request("http://x/", { headers: authorization ? { Authorization: authorization } : {} });

/** A fake Auth: answers /auth/v1/user with `status` and `{id}`; records the requests. */
function fakeAuth(status: number, id = USER_ID) {
  const seen: Request[] = [];
  const fetch = (input: string | URL | Request, init?: RequestInit) => {
    seen.push(new Request(input, init));
    return Promise.resolve(Response.json(status === 200 ? { id } : { code: "bad_jwt" }, { status }));
  };
  return { seen, fetch: fetch as typeof globalThis.fetch };
}

Deno.test("signedInUser: a user token Auth accepts is the user, with its claims", async () => {
  const auth = fakeAuth(200);
  const claims = { sub: USER_ID, role: "authenticated", aud: "authenticated" };
  const user = await signedInUser(req(`Bearer ${token(claims)}`), {
    supabaseUrl: "http://api",
    apiKey: "sb_secret_x",
    fetch: auth.fetch,
  });
  assert.deepEqual(user, { id: USER_ID, claims });
  assert.equal(auth.seen[0].url, "http://api/auth/v1/user");
  assert.equal(auth.seen[0].headers.get("apikey"), "sb_secret_x");
  assert.equal(auth.seen[0].headers.get("authorization"), `Bearer ${token(claims)}`);
});

Deno.test("signedInUser: anything else is no user; plain non-users never reach Auth", async () => {
  const options = (auth: ReturnType<typeof fakeAuth>) => ({
    supabaseUrl: "http://api",
    apiKey: "k",
    fetch: auth.fetch,
  });
  const quiet = fakeAuth(200);
  for (
    const header of [
      undefined,
      "Bearer sb_publishable_abc",
      `Bearer ${token({ role: "anon" })}`,
      `Bearer ${token({ role: "service_role" })}`,
      `Bearer ${token({ role: "authenticated" })}`,
      "Bearer not-a-jwt",
      "Basic abc",
    ]
  ) assert.equal(await signedInUser(req(header), options(quiet)), null, String(header));
  assert.equal(quiet.seen.length, 0);
  const userToken = `Bearer ${token({ sub: USER_ID, role: "authenticated" })}`;
  assert.equal(await signedInUser(req(userToken), options(fakeAuth(403))), null, "Auth refuses it");
  assert.equal(
    await signedInUser(req(userToken), options(fakeAuth(200, "someone-else"))),
    null,
    "another user",
  );
});

Deno.test("jwtClaims: base64url payloads, with non-ASCII text", () => {
  assert.deepEqual(jwtClaims(token({ sub: "x", name: "Zoë ✓" })), { sub: "x", name: "Zoë ✓" });
  assert.equal(jwtClaims("a.b"), null);
  assert.equal(jwtClaims("a.%%%.c"), null);
});
