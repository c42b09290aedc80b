// Answers with V8's heap limit as the isolate sees it (node:v8 getHeapStatistics, in bytes).
import v8 from "node:v8";

Deno.serve(() => Response.json({ heapSizeLimit: v8.getHeapStatistics().heap_size_limit }));
