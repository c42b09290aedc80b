-- Issue 15, encodings: a profile names the text encoding of its files. UTF-8 stays the default; the others are
-- the single-byte encodings of most non-UTF-8 CSV exports (supabase/functions/_shared/csv/encoding.ts: Windows-1252,
-- ISO-8859-1, ISO-8859-15, spelled as WHATWG labels; PostgreSQL calls them WIN1252, LATIN1, LATIN9) and UTF-16 LE/BE
-- (a file with a UTF-16 byte-order mark is read as UTF-16 under a utf-8 profile too). The job keeps
-- the encoding in its dialect (jobs.dialect ->> 'encoding', written by register_job from the plan), so a profile
-- changed later never changes how a registered job reads its file.
alter table csv_import.profiles
  add column encoding text not null default 'utf-8'
    check (encoding in ('utf-8', 'windows-1252', 'iso-8859-1', 'iso-8859-15', 'utf-16le', 'utf-16be'));

comment on column csv_import.profiles.encoding is
  'Text encoding of the files: utf-8 (default), windows-1252, iso-8859-1, iso-8859-15, utf-16le or utf-16be. A file that is not '
  'valid UTF-8 under a utf-8 profile fails at registration with a message naming the likely encoding.';
