/**
 * The upload page's calls to the client API, the Edge Function `csv-import-api` (works on the local stack and on
 * any hosted project alike): every call carries the project's publishable key as `apikey` and, when signed in,
 * the user's access token as Bearer; row-level security decides what a user sees, so the page never filters.
 *
 * Invariants:
 * - A failed call throws an ApiError with the HTTP status and the server's message (401: not signed in).
 * - Nothing is cached: each call asks the server.
 */
import type { Import, Reject } from "./format.ts";

/** The page's run-time configuration: config.json beside index.html (docs/web-app.md). */
export interface Config {
  /** The project's URL, e.g. https://<ref>.supabase.co (the local stack: http://127.0.0.1:54321). */
  supabaseUrl: string;
  /** The project's publishable (or legacy anon) key. */
  publishableKey: string;
  /** The bucket uploads go to (default csv-uploads). */
  bucket?: string;
  /** The folder in front of `<user id>/<file name>` (default "uploads"). */
  uploadFolder?: string;
  /** Subscribe to Realtime changes of csv_import.jobs to refresh sooner (default false: polling only). */
  realtime?: boolean;
}

/** Reads config.json beside the page (no cache: a changed configuration shows on the next load). */
export async function loadConfig(): Promise<Config> {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  return await response.json();
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class Api {
  constructor(
    private readonly config: Config,
    private readonly token: () => string | null,
  ) {}

  private async call<T>(method: "GET" | "POST", path: string): Promise<T> {
    const headers: Record<string, string> = {
      apikey: this.config.publishableKey,
    };
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(
      `${this.config.supabaseUrl}/functions/v1/csv-import-api${path}`,
      {
        method,
        headers,
      },
    );
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = { message: text };
    }
    if (!response.ok) {
      const message = (body as { message?: string; error?: string } | null)?.message ??
        (body as { error?: string } | null)?.error ??
        `HTTP ${response.status}`;
      throw new ApiError(response.status, message);
    }
    return body as T;
  }

  async imports(limit = 50): Promise<Import[]> {
    return (await this.call<{ imports: Import[] }>(
      "GET",
      `/imports?limit=${limit}`,
    )).imports;
  }

  job(id: number): Promise<Import> {
    return this.call<Import>("GET", `/imports/${id}`);
  }

  rejects(
    id: number,
    limit = 100,
  ): Promise<{ rejects: Reject[]; total: number }> {
    return this.call("GET", `/imports/${id}/rejects?limit=${limit}`);
  }

  rejectsFile(id: number): Promise<{ status: string; url: string | null }> {
    return this.call("GET", `/imports/${id}/rejects-file`);
  }

  cancel(id: number): Promise<{ status: string }> {
    return this.call("POST", `/imports/${id}/cancel`);
  }
}
