/**
 * LOCAL ONLY, never deployed: a minimal stand-in for Supabase Auth (GoTrue) at /auth/v1, so that supabase-js
 * `auth.signInWithPassword` and `auth.getUser` work unchanged against the local stack, and a client API's tests
 * and demo can sign real users in. Hosted projects (and `supabase start`) run the real Auth server instead; this
 * covers only password sign-in for users created through the local admin route.
 *
 * Routes (shapes as GoTrue answers them, supabase/auth internal/api/token.go, user.go, logout.go, errors.go):
 * - `POST /auth/v1/token?grant_type=password` `{email, password}` → 200 `{access_token, token_type: "bearer",
 *   expires_in, expires_at, refresh_token, user}`; `grant_type=refresh_token` `{refresh_token}` → a new session.
 *   A wrong password or unknown email → 400 `invalid_credentials` "Invalid login credentials" (the same answer for
 *   both, as GoTrue).
 * - `GET /auth/v1/user` with `Authorization: Bearer <access token>` → the user.
 * - `POST /auth/v1/logout` with the access token → 204 (the user's refresh tokens stop working).
 * - `POST /_local/auth/users` `{email, password}` (main.ts requires the service key, as for every /_local route)
 *   → 201 `{id, email}`: creates a confirmed user.
 *
 * Invariants:
 * - Errors have GoTrue's shape for the API version the client asks for: with `X-Supabase-Api-Version:
 *   2024-01-01` (supabase-js sends it) `{code: "<error_code>", message}`, without it `{code: <status>,
 *   error_code, msg}`.
 * - Access tokens are HS256 JWTs signed with the local JWT secret (keys.ts), with the claims Supabase Auth puts in
 *   them (sub = user id, role and aud "authenticated", email, exp one hour on, session_id, aal, amr), so RLS,
 *   Storage and functions treat them exactly as hosted tokens.
 * - Users live in the stand-in's auth.users (email, encrypted_password: bcrypt through pgcrypto's crypt(), as
 *   GoTrue stores bcrypt hashes); the module connects as supabase_auth_admin, the table's owner, as GoTrue does.
 *   Refresh tokens live in this process only: a gateway restart forgets them (sign in again).
 * - Every /auth/v1 answer carries permissive CORS headers and OPTIONS preflights answer 204, as the CLI's API
 *   gateway does, so a web page served elsewhere can sign in.
 */
import postgres from "postgres";
import { signJwt, verifyJwt } from "../keys.ts";

const ACCESS_TOKEN_SECONDS = 3600;
const API_VERSION_HEADER = "x-supabase-api-version";
const CORS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers":
    "authorization, apikey, content-type, x-client-info, x-supabase-api-version",
  "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
};

interface UserRow {
  id: string;
  email: string;
  created_at: Date;
  updated_at: Date;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Record<string, unknown>;
  raw_user_meta_data: Record<string, unknown>;
}

export interface AuthApi {
  /** Answers a request under /auth/v1/. */
  handle(req: Request): Promise<Response>;
  /** POST /_local/auth/users: creates a user (the caller checked the service key). */
  createUser(req: Request): Promise<Response>;
  close(): Promise<void>;
}

export function createAuthApi(options: { dbUrl: string; apiUrl: string }): AuthApi {
  const sql = postgres(options.dbUrl, { max: 2, idle_timeout: 20, onnotice: () => {} });
  const refreshTokens = new Map<string, string>(); // refresh token → user id
  const issuer = `${options.apiUrl}/auth/v1`;

  const userJson = (u: UserRow) => ({
    id: u.id,
    aud: "authenticated",
    role: "authenticated",
    email: u.email,
    email_confirmed_at: u.created_at.toISOString(),
    phone: "",
    confirmed_at: u.created_at.toISOString(),
    last_sign_in_at: u.last_sign_in_at?.toISOString() ?? null,
    app_metadata: { provider: "email", providers: ["email"], ...u.raw_app_meta_data },
    user_metadata: u.raw_user_meta_data,
    identities: [],
    created_at: u.created_at.toISOString(),
    updated_at: u.updated_at.toISOString(),
    is_anonymous: false,
  });

  const userById = async (id: string) =>
    (await sql<UserRow[]>`
      select id, email, created_at, updated_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data
      from auth.users where id::text = ${id}`)[0];

  async function session(u: UserRow, method: string) {
    const now = Math.floor(Date.now() / 1000);
    const user = userJson(u);
    const accessToken = await signJwt({
      aud: "authenticated",
      exp: now + ACCESS_TOKEN_SECONDS,
      iat: now,
      iss: issuer,
      sub: u.id,
      email: u.email,
      phone: "",
      app_metadata: user.app_metadata,
      user_metadata: user.user_metadata,
      role: "authenticated",
      aal: "aal1",
      amr: [{ method, timestamp: now }],
      session_id: crypto.randomUUID(),
      is_anonymous: false,
    });
    const refreshToken = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
    refreshTokens.set(refreshToken, u.id);
    return {
      access_token: accessToken,
      token_type: "bearer",
      expires_in: ACCESS_TOKEN_SECONDS,
      expires_at: now + ACCESS_TOKEN_SECONDS,
      refresh_token: refreshToken,
      user,
    };
  }

  async function passwordGrant(body: Record<string, unknown>, req: Request): Promise<Response> {
    const email = typeof body.email === "string" ? body.email.trim().toLowerCase() : "";
    const password = typeof body.password === "string" ? body.password : "";
    if (!email) return authError(req, 400, "validation_failed", "missing email or phone");
    const [row] = await sql<UserRow[]>`
      update auth.users set last_sign_in_at = now()
      where lower(email) = ${email} and encrypted_password is not null
        and encrypted_password = extensions.crypt(${password}, encrypted_password)
      returning id, email, created_at, updated_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data`;
    if (!row) return authError(req, 400, "invalid_credentials", "Invalid login credentials");
    return json(await session(row, "password"));
  }

  async function refreshGrant(body: Record<string, unknown>, req: Request): Promise<Response> {
    const token = typeof body.refresh_token === "string" ? body.refresh_token : "";
    const userId = refreshTokens.get(token);
    const row = userId ? await userById(userId) : undefined;
    if (!row) {
      return authError(req, 400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
    }
    refreshTokens.delete(token);
    return json(await session(row, "password"));
  }

  /** The user the request's access token names, or the error response GoTrue gives. */
  async function caller(req: Request): Promise<UserRow | Response> {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "")?.[1];
    if (!token) return authError(req, 401, "no_authorization", "This endpoint requires a valid Bearer token");
    const claims = await verifyJwt(token);
    if (!claims) {
      return authError(
        req,
        403,
        "bad_jwt",
        "invalid JWT: unable to parse or verify signature, token is invalid",
      );
    }
    if (typeof claims.sub !== "string" || !claims.sub) {
      return authError(req, 403, "bad_jwt", "invalid claim: missing sub claim");
    }
    const row = /^[0-9a-f-]{36}$/i.test(claims.sub) ? await userById(claims.sub) : undefined;
    return row ?? authError(req, 403, "user_not_found", "User from sub claim in JWT does not exist");
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "");
    if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: CORS });
    if (path === "/auth/v1/token" && req.method === "POST") {
      const body = await jsonBody(req);
      if (!body) return authError(req, 400, "bad_json", "Could not parse request body as JSON");
      const grant = url.searchParams.get("grant_type");
      if (grant === "password") return await passwordGrant(body, req);
      if (grant === "refresh_token") return await refreshGrant(body, req);
      return authError(req, 400, "validation_failed", "unsupported_grant_type");
    }
    if (path === "/auth/v1/user" && req.method === "GET") {
      const user = await caller(req);
      return user instanceof Response ? user : json(userJson(user));
    }
    if (path === "/auth/v1/logout" && req.method === "POST") {
      const user = await caller(req);
      if (user instanceof Response) return user;
      for (const [token, id] of refreshTokens) if (id === user.id) refreshTokens.delete(token);
      return new Response(null, { status: 204, headers: CORS });
    }
    return authError(req, 404, "not_found", `The local auth stand-in has no route ${req.method} ${path}`);
  }

  async function createUser(req: Request): Promise<Response> {
    const body = await jsonBody(req);
    const email = typeof body?.email === "string" ? body.email.trim().toLowerCase() : "";
    const password = typeof body?.password === "string" ? body.password : "";
    if (!email || password.length < 6) {
      return Response.json({ message: "email and a password of at least 6 characters are required" }, {
        status: 400,
      });
    }
    const [row] = await sql<{ id: string }[]>`
      insert into auth.users (email, encrypted_password)
      values (${email}, extensions.crypt(${password}, extensions.gen_salt('bf', 10)))
      on conflict (email) do nothing
      returning id`;
    if (!row) return Response.json({ message: `a user with the email "${email}" exists` }, { status: 422 });
    return Response.json({ id: row.id, email }, { status: 201 });
  }

  return { handle, createUser, close: () => sql.end({ timeout: 1 }) };
}

async function jsonBody(req: Request): Promise<Record<string, unknown> | null> {
  try {
    const body = await req.json();
    return body !== null && typeof body === "object" && !Array.isArray(body) ? body : null;
  } catch {
    return null;
  }
}

function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: CORS });
}

/** An error as GoTrue shapes it for the API version the request asks for (see the module doc). */
function authError(req: Request, status: number, code: string, message: string): Response {
  const version = req.headers.get(API_VERSION_HEADER);
  if (version !== null && version >= "2024-01-01") {
    return Response.json({ code, message }, {
      status,
      headers: { ...CORS, "X-Supabase-Api-Version": "2024-01-01", "x-sb-error-code": code },
    });
  }
  return Response.json({ code: status, error_code: code, msg: message }, {
    status,
    headers: { ...CORS, "x-sb-error-code": code },
  });
}
