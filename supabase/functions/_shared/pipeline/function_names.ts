/**
 * The deployed names of the pipeline's Edge Functions. They share the `csv-import-` prefix so that deploying the
 * pipeline into an existing project cannot collide with (or overwrite) a user's own `register` or `health`.
 *
 * Invariants:
 * - Each name equals its directory under `supabase/functions/` and its `[functions.<name>]` block in
 *   `supabase/config.toml` (tests/function_names_test.ts checks both).
 * - The database builds the same URLs from the role name (`csv_import.function_endpoint('register')` →
 *   `/functions/v1/csv-import-register`, migration 20261205000000_prefix_function_names.sql).
 */
export const FUNCTION_PREFIX = "csv-import-";

export const FUNCTION_NAMES = {
  register: "csv-import-register",
  chunk: "csv-import-chunk",
  inflate: "csv-import-inflate",
  dispatch: "csv-import-dispatch",
  health: "csv-import-health",
  api: "csv-import-api",
} as const;

export type PipelineFunction = (typeof FUNCTION_NAMES)[keyof typeof FUNCTION_NAMES];
