/**
 * Usage: deno task csv-import <command> [options]        (or: deno run -A cli/main.ts <command> …)
 *
 *   import <file> [--profile NAME] [--path OBJECT] [--upsert] [--wait] [--json] [--timeout S] [--[no-]resumable]
 *   status [JOB] [--json]          one job in detail, or (without JOB) the pipeline's health
 *   list [--limit N] [--status S] [--json]
 *   rejects JOB --out FILE [--from-db]
 *   cancel JOB [--reason TEXT] [--json]
 *   retry JOB [--wait] [--json] [--timeout S]
 *   profiles list | show NAME | add --name N --pattern P --table T [...] | remove NAME
 *
 * The operator's command line for the pipeline. `import` uploads a file to the bucket with supabase-js, streaming
 * it from disk (files over 6 MB go through Storage's resumable TUS endpoint in 6 MB pieces, on a hosted project
 * and on the local stack), finds the job the upload registered and, with --wait, follows it with a live progress bar (bytes, rows,
 * rows/s, ETA, rejects) read from csv_import.job_progress. Everything else is one SQL call: csv_import.cancel_job,
 * retry_job, health, the job_progress view, profiles.
 *
 * Configuration (environment): SUPABASE_URL, SUPABASE_DB_URL (Postgres connection string; against a hosted
 * project, the project's connection string), and the service key from SUPABASE_SECRET_KEY,
 * SUPABASE_SERVICE_ROLE_KEY or SUPABASE_SERVICE_KEY. Against a hosted project all three must be set. Against the
 * local stack (a loopback SUPABASE_URL, or none) what is not set comes from the file the stack publishes when it
 * starts, `.local/stack.env` (under LOCAL_STATE_DIR when set): its API URL, database URL and secret key.
 *
 * Exit status: 0 on success (a job that succeeded, with or without rejects), 1 when the job failed, was
 * cancelled, timed out or an operation was refused (the reason is printed), 2 for a usage or configuration error.
 *
 * This file is the entry point and the commander wiring only. common.ts: configuration, errors, formatting,
 * argument parsers; upload.ts: object names and the two upload methods; follow.ts: progress, follow, report;
 * commands.ts: one function per command. Each imports only from the files before it in that list.
 *
 * Invariants: one database connection per run, opened by the first command that needs it and closed after its
 * action; the exit status is decided here only (main), from a CliError's exitCode or commander's usage errors.
 */
import { Command, Option } from "commander";
import { FILE_ENCODINGS } from "../supabase/functions/_shared/csv/encoding.ts";
import {
  cancel,
  importFile,
  type ImportOptions,
  listJobs,
  type ProfileAddOptions,
  profiles,
  retry,
  showStatus,
  writeRejects,
} from "./commands.ts";
import {
  type CliConfig,
  CliError,
  connectDb,
  loadCliConfig,
  parseJobId,
  parseNonNegative,
  parsePositive,
  pgMessage,
  readLocalStackEnv,
  safe,
  type Sql,
} from "./common.ts";

// Command line ----------------------------------------------------------------------------------------------------------------

/** Builds the commander program; `run` receives the chosen action with a database connection. */
export function buildProgram(env: Record<string, string | undefined>): Command {
  let sql: Sql | null = null;
  let cfg: CliConfig | null = null;
  const ctx = () => {
    cfg ??= loadCliConfig(env, readLocalStackEnv(env));
    sql ??= connectDb(cfg);
    return { cfg, sql };
  };
  const program = new Command("csv-import")
    .description(
      "Operate the CSV import pipeline: import files, follow, cancel and retry jobs, manage profiles",
    )
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .hook("postAction", async () => {
      await (sql as Sql | null)?.end({ timeout: 5 });
    });

  program.command("import")
    .description(
      "Upload a CSV file to the bucket (the upload starts the import) and optionally follow the job",
    )
    .argument("<file>", "the CSV file to import")
    .option("--profile <name>", "import profile to use (the object name is derived from its pattern)")
    .option(
      "--path <object>",
      "object name in the bucket (default: the file's name, under the profile's prefix)",
    )
    .option("--upsert", "overwrite an existing object of that name (a new version: a new job)")
    .option("--wait", "follow the job until it ends; exit 0 only when it succeeded")
    .option("--json", "print one JSON summary instead of progress and text")
    .option("--timeout <seconds>", "with --wait: give up after this many seconds", parsePositive)
    .addOption(new Option("--resumable", "force a resumable (TUS) upload"))
    .addOption(new Option("--no-resumable", "force a standard upload"))
    .option(
      "--dry-run",
      "validate the file against its profile without writing a row (the job ends 'validated')",
    )
    .action(async (file: string, o: ImportOptions) => {
      const { cfg, sql } = ctx();
      await importFile(cfg, sql, file, o);
    });

  program.command("status")
    .description("Show one job in detail, or the pipeline's health without a JOB")
    .argument("[job]", "job id", parseJobId)
    .option("--json", "print JSON")
    .action(async (job: number | undefined, o: { json?: boolean }) =>
      await showStatus(ctx().sql, job, !!o.json)
    );

  program.command("list")
    .description("List recent jobs")
    .option("--limit <n>", "how many", (v) => Math.floor(parsePositive(v)), 20)
    .option("--status <status>", "only jobs in this state")
    .option("--json", "print JSON")
    .action(async (o: { limit: number; status?: string; json?: boolean }) => await listJobs(ctx().sql, o));

  program.command("rejects")
    .description(
      "Write a job's rejects CSV (from Storage, or built from csv_import.rejects if not written yet)",
    )
    .argument("<job>", "job id", parseJobId)
    .requiredOption("--out <file>", "where to write the CSV")
    .option("--from-db", "build it from csv_import.rejects even when the file exists in Storage")
    .action(async (job: number, o: { out: string; fromDb?: boolean }) => {
      const { cfg, sql } = ctx();
      await writeRejects(cfg, sql, job, o);
    });

  program.command("cancel")
    .description("Cancel a job: nothing more is dispatched, running chunks stop at their next batch")
    .argument("<job>", "job id", parseJobId)
    .option("--reason <text>", "recorded as the job's error", "Cancelled by request")
    .option("--json", "print JSON")
    .action(async (job: number, o: { reason?: string; json?: boolean }) => await cancel(ctx().sql, job, o));

  program.command("retry")
    .description(
      "Re-run the dead and cancelled chunks of a failed or cancelled job (committed batches are kept)",
    )
    .argument("<job>", "job id", parseJobId)
    .option("--wait", "follow the job until it ends")
    .option("--json", "print JSON")
    .option("--timeout <seconds>", "with --wait: give up after this many seconds", parsePositive)
    .action(async (job: number, o: { wait?: boolean; json?: boolean; timeout?: number }) =>
      await retry(ctx().sql, job, o)
    );

  program.command("profiles")
    .description("Import profiles: list | show NAME | add --name --pattern --table [...] | remove NAME")
    .argument("<action>", "list, show, add or remove")
    .argument("[name]", "profile name (show, remove)")
    .option("--name <name>", "add: profile name")
    .option("--pattern <like>", "add: LIKE pattern on the object name, e.g. 'orders/%'")
    .option("--table <table>", "add: schema-qualified target table, e.g. public.orders")
    .option("--create-table", "add: make the target from the file when it does not exist (types inferred)")
    .option(
      "--schema <schema>",
      "add: with --create-table and no --table, a table per file, named after it, here",
    )
    .option("--bucket <bucket>", "add: bucket watched", "csv-uploads")
    .addOption(
      new Option("--on-conflict <mode>", "add: duplicate keys").choices([
        "insert",
        "upsert",
        "skip_duplicates",
      ])
        .default("insert"),
    )
    .option("--conflict-columns <cols>", "add: comma-separated key columns (upsert)")
    .option("--tolerated-reject-rate <rate>", "add: share of rows that may be rejected (0–1)", Number, 0)
    .option(
      "--max-rejects <n>",
      "add: stop the job at once, failed, when it rejects more rows",
      (v) => Math.floor(parseNonNegative(v)),
    )
    .option(
      "--reject-rate-after-rows <n>",
      "add: judge the tolerated reject rate as soon as this many rows were seen (default: at the end)",
      (v) => Math.floor(parsePositive(v)),
    )
    .option("--priority <n>", "add: higher is dispatched first", Number, 0)
    .option("--delimiter <char>", "add: field delimiter (default: sniffed)")
    .option("--quote <char>", "add: quote character (default: sniffed)")
    .addOption(
      new Option("--encoding <name>", "add: the files' text encoding").choices([...FILE_ENCODINGS]).default(
        "utf-8",
      ),
    )
    .option("--header", "add: the file has a header line (default: sniffed)")
    .option("--no-header", "add: the file has no header line")
    .option("--dry-run", "add: validate this profile's files without writing a row (jobs end 'validated')")
    .addOption(
      new Option("--date-style <style>", "add: date order").choices(["iso", "dmy", "mdy"]).default("iso"),
    )
    .addOption(
      new Option(
        "--write-as <who>",
        "add: whose rights rows are written with (default: the uploader's for tables with RLS; docs/security.md)",
      ).choices(["uploader", "service_role"]),
    )
    .option("--chunk-size <bytes>", "add: bytes per chunk", (v) => Math.floor(parsePositive(v)))
    .option(
      "--max-parallel-chunks <n>",
      "add: chunks at once for one job",
      (v) => Math.floor(parsePositive(v)),
    )
    .option("--max-attempts <n>", "add: attempts per chunk", (v) => Math.floor(parsePositive(v)), 5)
    .option(
      "--alias <column=names>",
      "add: accepted header names of a column, e.g. 'email=E-mail|Mail address' (repeatable)",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option("--json", "list: print JSON")
    .action(async (action: string, name: string | undefined, o: ProfileAddOptions & { json?: boolean }) =>
      await profiles(ctx().sql, action, name, o)
    );
  return program;
}

/** Runs the CLI; returns the exit status. */
export async function main(args: string[], env: Record<string, string | undefined>): Promise<number> {
  const program = buildProgram(env);
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "commander.helpDisplayed" || code === "commander.version") return 0;
    if (code?.startsWith("commander.")) return 2; // commander printed the usage error
    if (error instanceof CliError) {
      console.error(safe`csv-import: ${error.message}`);
      return error.exitCode;
    }
    console.error(safe`csv-import: ${pgMessage(error)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, Deno.env.toObject()));
}
