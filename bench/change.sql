-- The ~2% scattered change of bench/README.md: a reviewer flips some
-- annotations and some documents get re-dated. Rows are spread over the
-- whole id range, so the changed pages are spread over the whole file.
BEGIN;
UPDATE annotation SET validated = 1 - validated WHERE id % 1200 = 0;
UPDATE document SET created = '2026-11-24' WHERE id % 400 = 0;
COMMIT;
