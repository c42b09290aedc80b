-- Issue 16, compressed uploads: a chunk kind of its own for the inflate chain (a gzip stream cannot be split at a
-- byte offset, so one chunk per compressed job inflates it from checkpoint to checkpoint and creates the load
-- chunks as it goes: 20261211000100_compressed_uploads.sql). In its own migration: an enum value added in a
-- transaction cannot be used in it.
alter type csv_import.chunk_kind add value if not exists 'inflate';
