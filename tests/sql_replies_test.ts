/**
 * The TypeScript mirror of the SQL state vocabulary (supabase/functions/_shared/pipeline/sql_replies.ts) spells
 * exactly the labels of the database's enums, in the same order, so a label added or renamed on one side fails
 * here rather than as an unhandled reply in a worker.
 */
import assert from "node:assert/strict";
import { BATCH_STATES, CHUNK_STATUSES } from "../supabase/functions/_shared/pipeline/sql_replies.ts";
import { connect, E2E } from "./support/stack.ts";

Deno.test({
  name: "sql replies: the TS unions spell the enums' labels (batch_state, chunk_status)",
  ...E2E,
  async fn() {
    const sql = connect(1);
    try {
      const [row] = await sql<{ batch: string[]; chunk: string[] }[]>`
        select enum_range(null::csv_import.batch_state)::text[] as batch,
               enum_range(null::csv_import.chunk_status)::text[] as chunk`;
      assert.deepEqual(row.batch, [...BATCH_STATES]);
      assert.deepEqual(row.chunk, [...CHUNK_STATUSES]);
    } finally {
      await sql.end();
    }
  },
});
