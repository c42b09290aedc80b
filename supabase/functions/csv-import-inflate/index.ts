/**
 * inflate (deployed as csv-import-inflate): runs one step of a compressed job's inflate chain (issue 16;
 * pipeline/inflate_step.ts). Called by dispatch with {"chunk_id": N, "lease_token": "uuid"} for chunks of kind
 * 'inflate', as csv-import-chunk is for loads and scans, and works the same way (answers 202, works in the
 * background, hands its chunk back at beforeunload) but takes on no further chunk: every range it commits is
 * dispatched to csv-import-chunk.
 * Why a function of its own: the runtime gives concurrent requests of one function one isolate, whose thread and
 * CPU limit they share; in csv-import-chunk the chain, which every later load of its job waits for, was time-sliced
 * with up to three loads (measured on the 1M-row file gzipped: the chain spanned 6.0–8.7 s of a 8.9–9.9 s job for
 * 1.7 s of its own CPU).
 * Auth: service role key, secret key, or the pipeline's internal secret (verify_jwt = false).
 */
import { serveChunkInvocations } from "../_shared/pipeline/chunk_endpoint.ts";
import { FUNCTION_NAMES } from "../_shared/pipeline/function_names.ts";

serveChunkInvocations(FUNCTION_NAMES.inflate, { takeMore: false });
