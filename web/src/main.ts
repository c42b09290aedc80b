/**
 * The upload page: sign in (Supabase Auth, email and password), drop CSV files, upload each one resumably (TUS,
 * Storage's /storage/v1/upload/resumable, 6 MB pieces, as Supabase documents it), then follow its import (the
 * pipeline registers a job for every upload), see its rejected rows, download them, cancel it, and list past
 * imports. Everything the page shows comes from the client API (api.ts), so row-level security decides what a
 * user sees; the page never filters by user.
 *
 * Invariants:
 * - Configuration is read at run time from config.json beside index.html: one build runs against any project.
 * - The upload bar never moves backwards: after a dropped connection tus-js-client asks the server for the
 *   stored offset and resumes from there, re-sending what the browser had sent but the server never stored
 *   (found by the browser test's mid-body cut: the bar fell from 98 % to 75 %); the bar holds its highest value
 *   meanwhile and its text says it is re-sending.
 * - A job is followed by polling every second (works everywhere); a Realtime change of csv_import.jobs, where the
 *   project has Realtime and config.json asks for it, only makes the next refresh sooner.
 * - Text the page shows of a file (names, raw rejected rows) is set as text, never as HTML.
 */
import { createClient, type Session } from "@supabase/supabase-js";
import * as tus from "tus-js-client";
import { Api, ApiError, type Config, loadConfig } from "./api.ts";
import {
  count,
  fileName,
  type Import,
  importPercent,
  importSummary,
  isCsvUpload,
  isTerminal,
  objectNameFor,
  retriesUpload,
  statusText,
  uploadRetryText,
  wholePercent,
} from "./format.ts";

/** Supabase's required piece size for resumable uploads. */
const CHUNK_SIZE = 6 * 1024 * 1024;
/** tus-js-client's waits before each retry of a failed request (ms). */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000];
const POLL_MS = 1000;
const HISTORY_POLL_MS = 5000;

const $ = <T extends HTMLElement>(
  selector: string,
  root: ParentNode = document,
): T => {
  const element = root.querySelector<T>(selector);
  if (!element) throw new Error(`missing element ${selector}`);
  return element;
};

const config: Config = await loadConfig().catch((error) => {
  $("#page-status").textContent = `The page has no configuration (config.json): ${error.message}`;
  throw error;
});
const bucket = config.bucket ?? "csv-uploads";
const folder = config.uploadFolder ?? "uploads";
const supabase = createClient(config.supabaseUrl, config.publishableKey, {
  auth: { persistSession: true, autoRefreshToken: true },
});
let session: Session | null = null;
const api = new Api(config, () => session?.access_token ?? null);

/** Cards on screen by import id, and the refresh each one waits for. */
const cards = new Map<number, Card>();
let historyTimer: number | undefined;

// ---- sign in ------------------------------------------------------------------------------------------------

$("#sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  const email = ($("#email", form) as HTMLInputElement).value.trim();
  const password = ($("#password", form) as HTMLInputElement).value;
  const error = $("#sign-in-error");
  error.textContent = "";
  if (!email || !password) {
    error.textContent = "Enter your email and password.";
    return;
  }
  const button = $<HTMLButtonElement>("button[type=submit]", form);
  button.disabled = true;
  const { error: failed } = await supabase.auth.signInWithPassword({
    email,
    password,
  });
  button.disabled = false;
  if (failed) error.textContent = `Sign-in failed: ${failed.message}`;
});

$("#sign-out").addEventListener("click", async () => {
  await supabase.auth.signOut();
});

supabase.auth.onAuthStateChange((_event, next) => {
  const changedUser = (next?.user.id ?? null) !== (session?.user.id ?? null);
  session = next;
  if (changedUser) showAccount();
});

function showAccount(): void {
  const signedIn = session !== null;
  $("#sign-in").hidden = signedIn;
  $("#upload").hidden = !signedIn;
  $("#account").hidden = !signedIn;
  $("#who").textContent = signedIn ? `Signed in as ${session!.user.email ?? session!.user.id}` : "";
  $("#page-status").textContent = signedIn ? "" : "Sign in to upload CSV files.";
  for (const card of cards.values()) card.element.remove();
  cards.clear();
  $("#files").replaceChildren();
  void refreshHistory();
  if (signedIn) subscribeRealtime();
}

// ---- files: drop zone and file input --------------------------------------------------------------------------

const dropZone = $("#drop-zone");
const fileInput = $<HTMLInputElement>("#file-input");
fileInput.addEventListener("change", () => {
  for (const file of Array.from(fileInput.files ?? [])) startUpload(file);
  fileInput.value = "";
});
for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropZone.addEventListener(type, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  for (
    const file of Array.from((event as DragEvent).dataTransfer?.files ?? [])
  ) startUpload(file);
});

// ---- one file: its upload, then its import ---------------------------------------------------------------------

class Card {
  readonly element: HTMLElement;
  jobId: number | null = null;
  private timer: number | undefined;
  private rejectsShown = false;

  constructor(label: string) {
    const template = $<HTMLTemplateElement>("#card-template");
    this.element = (template.content.firstElementChild as HTMLElement)
      .cloneNode(true) as HTMLElement;
    this.element.dataset.file = label;
    $(".file-name", this.element).textContent = label;
    $(".upload-bar", this.element).setAttribute(
      "aria-label",
      `Upload of ${label}`,
    );
    $(".import-bar", this.element).setAttribute(
      "aria-label",
      `Import of ${label}`,
    );
    $("#files").prepend(this.element);
    $(".cancel", this.element).addEventListener("click", () => this.cancel());
  }

  part(selector: string): HTMLElement {
    return $(selector, this.element);
  }

  uploadProgress(percent: number, state: string): void {
    const bar = this.part(".upload-bar") as HTMLProgressElement;
    bar.value = percent;
    bar.setAttribute("aria-valuetext", `${percent} %`);
    this.part(".upload-text").textContent = `${percent} %`;
    this.part(".upload-state").textContent = state;
  }

  error(message: string): void {
    this.part(".card-error").textContent = message;
  }

  /** Follows import `id`: polls it every second until it ends. */
  follow(id: number): void {
    this.jobId = id;
    this.element.dataset.importId = String(id);
    cards.set(id, this);
    this.part(".import-part").hidden = false;
    void this.refresh();
  }

  async refresh(): Promise<void> {
    if (this.jobId === null) return;
    clearTimeout(this.timer);
    try {
      const job = await api.job(this.jobId);
      this.show(job);
      if (isTerminal(job.status)) {
        await this.showRejects(job);
        void refreshHistory();
        return;
      }
    } catch (error) {
      this.error(`Could not read the import: ${(error as Error).message}`);
    }
    this.timer = setTimeout(() => void this.refresh(), POLL_MS);
  }

  show(job: Import): void {
    const percent = importPercent(job);
    const bar = this.part(".import-bar") as HTMLProgressElement;
    bar.value = percent;
    bar.setAttribute("aria-valuetext", `${percent} %`);
    this.part(".import-text").textContent = `${percent} %`;
    const state = this.part(".import-state");
    state.textContent = statusText(job.status);
    state.className = `import-state status-${job.status}`;
    this.element.dataset.status = job.status;
    this.part(".import-summary").textContent = importSummary(job) +
      (job.table_name ? ` · into ${job.table_name}` : "");
    (this.part(".cancel") as HTMLButtonElement).hidden = isTerminal(job.status);
    this.error(job.error && job.status === "failed" ? job.error : "");
  }

  async showRejects(job: Import): Promise<void> {
    if (this.rejectsShown || !job.rows_rejected) return;
    this.rejectsShown = true;
    const { rejects, total } = await api.rejects(job.id, 100);
    this.part(".rejects-part").hidden = false;
    this.part(".rejects-title").textContent = rejects.length < total
      ? `Rejected rows: first ${count(rejects.length)} of ${count(total)}`
      : `Rejected rows (${count(total)})`;
    const body = this.part(".rejects tbody");
    body.replaceChildren(...rejects.map((reject) => {
      const row = document.createElement("tr");
      for (
        const [value, cls] of [[reject.line, "line"], [
          reject.column_name ?? "",
          "column",
        ], [
          reject.reason,
          "reason",
        ], [reject.raw ?? "", "raw"]] as const
      ) {
        const cell = document.createElement("td");
        cell.className = cls;
        cell.textContent = String(value);
        row.append(cell);
      }
      return row;
    }));
    await this.rejectsFile(job.id);
  }

  /** The rejects file's signed URL; it is written after the job ends, so ask again until it is there. */
  async rejectsFile(id: number, attempt = 0): Promise<void> {
    const state = this.part(".rejects-file-state");
    try {
      const file = await api.rejectsFile(id);
      if (file.url) {
        const link = this.part(".rejects-download") as HTMLAnchorElement;
        const name = `${fileName(this.element.dataset.file ?? "import")}.rejects.csv`;
        // Storage is another origin than the page wherever the page is hosted, and browsers ignore the download
        // attribute across origins: Storage's ?download= makes the response an attachment with this name.
        const href = new URL(file.url);
        if (!href.searchParams.has("download")) href.searchParams.set("download", name);
        link.href = href.toString();
        link.download = name;
        link.hidden = false;
        state.textContent = "";
        return;
      }
      state.textContent = `Rejects file: ${file.status}…`;
      if (
        file.status === "failed" || attempt >= 120
      ) return;
    } catch (error) {
      state.textContent = `Rejects file: ${(error as Error).message}`;
      if (attempt >= 120) return;
    }
    setTimeout(() => void this.rejectsFile(id, attempt + 1), POLL_MS);
  }

  async cancel(): Promise<void> {
    if (this.jobId === null) return;
    const button = this.part(".cancel") as HTMLButtonElement;
    button.disabled = true;
    try {
      await api.cancel(this.jobId);
    } catch (error) {
      this.error(`Could not cancel: ${(error as Error).message}`);
    }
    button.disabled = false;
    await this.refresh();
  }
}

function startUpload(file: File): void {
  if (!session) return;
  const objectName = objectNameFor(folder, session.user.id, file.name);
  const card = new Card(file.name);
  card.element.dataset.object = objectName;
  if (!isCsvUpload(file)) {
    card.error(`"${file.name}" is not a CSV file (.csv, or compressed: .csv.gz, .zip).`);
    card.uploadProgress(0, "Not uploaded");
    return;
  }
  const token = session.access_token;
  let confirmed = 0;
  let shown = 0;
  // Statuses of the retried requests (0: the connection dropped), for the card's text (uploadRetryText).
  const retried: number[] = [];
  let known: Set<number> = new Set();
  // The imports of this object that already exist: the new upload's job is the one that is not among them.
  const before = api.imports(50).then((list) => {
    known = new Set(
      list.filter((job) => job.object === objectName).map((job) => job.id),
    );
  }).catch(() => {});
  card.uploadProgress(0, "Uploading…");
  const upload = new tus.Upload(file, {
    endpoint: `${config.supabaseUrl}/storage/v1/upload/resumable`,
    retryDelays: RETRY_DELAYS,
    headers: {
      authorization: `Bearer ${token}`,
      apikey: config.publishableKey,
      "x-upsert": "false",
    },
    uploadDataDuringCreation: true,
    removeFingerprintOnSuccess: true,
    metadata: {
      bucketName: bucket,
      objectName,
      contentType: "text/csv",
      cacheControl: "3600",
    },
    chunkSize: CHUNK_SIZE,
    onProgress: (sent, total) => {
      // 99 at most until the server has confirmed the last byte (onSuccess): 100 % means stored.
      const now = Math.min(99, wholePercent(Math.max(sent, confirmed), total));
      shown = Math.max(shown, now);
      card.uploadProgress(
        shown,
        now < shown
          ? `Re-sending from ${now} % what did not arrive before the connection dropped…`
          : retried.length > 0
          ? `Uploading (resumed after ${uploadRetryText(retried)})…`
          : "Uploading…",
      );
    },
    onChunkComplete: (_size, accepted) => {
      confirmed = Math.max(confirmed, accepted);
    },
    onShouldRetry: (error, attempt) => {
      const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
      const retry = retriesUpload(status);
      if (retry) {
        retried.push(status);
        card.element.dataset.uploadRetries = retried.join(",");
        card.part(".upload-state").textContent = status === 0
          ? `Connection lost; resuming (attempt ${attempt + 1})…`
          : `The server answered HTTP ${status}; resuming (attempt ${attempt + 1})…`;
      }
      return retry;
    },
    onError: (error) => {
      card.uploadProgress(Math.max(shown, wholePercent(confirmed, file.size)), "Upload failed");
      card.error(`Upload failed: ${uploadMessage(error)}`);
    },
    onSuccess: async () => {
      card.uploadProgress(
        100,
        retried.length > 0 ? `Uploaded (resumed after ${uploadRetryText(retried)})` : "Uploaded",
      );
      card.part(".import-part").hidden = false;
      card.part(".import-state").textContent = statusText("registering");
      await before;
      await findImport(card, objectName, known);
    },
  });
  upload.start();
}

function uploadMessage(error: Error): string {
  const response = (error as tus.DetailedError).originalResponse;
  const body = response?.getBody();
  return body ? `${body} (HTTP ${response!.getStatus()})` : error.message;
}

/** Waits for the job the upload registered (the storage trigger creates it as the upload commits). */
async function findImport(
  card: Card,
  objectName: string,
  known: Set<number>,
  attempt = 0,
): Promise<void> {
  try {
    const job = (await api.imports(50)).find((job) => job.object === objectName && !known.has(job.id));
    if (job) {
      card.follow(job.id);
      void refreshHistory();
      return;
    }
  } catch (error) {
    card.error(`Could not list imports: ${(error as Error).message}`);
  }
  if (attempt < 300) {
    setTimeout(
      () => void findImport(card, objectName, known, attempt + 1),
      POLL_MS,
    );
  } else card.error("No import was registered for this upload.");
}

// ---- past imports -------------------------------------------------------------------------------------------------

async function refreshHistory(): Promise<void> {
  clearTimeout(historyTimer);
  const status = $("#history-status");
  const body = $("#imports tbody");
  let list: Import[] = [];
  try {
    list = await api.imports(50);
    status.textContent = list.length === 0
      ? "No imports yet."
      : `${list.length} import${list.length > 1 ? "s" : ""}.`;
  } catch (error) {
    status.textContent = error instanceof ApiError && error.status === 401
      ? "Sign in to see your imports."
      : `Could not list imports: ${(error as Error).message}`;
  }
  body.replaceChildren(...list.map((job) => {
    const row = document.createElement("tr");
    row.dataset.importId = String(job.id);
    const cells = [
      job.object,
      statusText(job.status),
      count(job.rows_loaded),
      count(job.rows_rejected),
      new Date(job.created_at).toLocaleString(),
    ];
    for (const [i, value] of cells.entries()) {
      const cell = document.createElement("td");
      cell.textContent = value;
      if (i === 1) cell.className = `status-${job.status}`;
      row.append(cell);
    }
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = "Details";
    open.setAttribute(
      "aria-label",
      `Details of ${fileName(job.object)} (import ${job.id})`,
    );
    open.addEventListener("click", () => {
      const existing = cards.get(job.id);
      if (existing) return existing.element.scrollIntoView();
      const card = new Card(fileName(job.object));
      card.element.dataset.object = job.object;
      card.part(".upload-part").hidden = true;
      card.follow(job.id);
      card.element.scrollIntoView();
    });
    const cell = document.createElement("td");
    cell.append(open);
    row.append(cell);
    return row;
  }));
  if (session) {
    historyTimer = setTimeout(() => void refreshHistory(), HISTORY_POLL_MS);
  }
}

// ---- Realtime: sooner refreshes where the project has it ----------------------------------------------------------

let subscribed = false;
function subscribeRealtime(): void {
  if (!config.realtime || subscribed) return;
  subscribed = true;
  supabase.channel("csv-import-jobs")
    .on(
      "postgres_changes",
      { event: "*", schema: "csv_import", table: "jobs" },
      (change) => {
        const id = Number(
          (change.new as { id?: number })?.id ??
            (change.old as { id?: number })?.id,
        );
        void cards.get(id)?.refresh();
        void refreshHistory();
      },
    )
    .subscribe();
}

// ---- start ----------------------------------------------------------------------------------------------------------

session = (await supabase.auth.getSession()).data.session;
showAccount();
