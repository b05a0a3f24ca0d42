-- Issue 13 + 17 (edge trail schema contract): per-side verdicts, staged-policy verdicts and
-- external egress. Applied after 0001 inside the same advisory-locked transaction; idempotent.
-- Rows of the 0001 table (primary key src_ns, dst_ns, action) become reporter = 'src': every
-- row is kept.
ALTER TABLE edge ADD COLUMN IF NOT EXISTS reporter text NOT NULL DEFAULT 'src';
ALTER TABLE edge ALTER COLUMN reporter DROP DEFAULT;
ALTER TABLE edge ADD COLUMN IF NOT EXISTS pending_action text NULL;
ALTER TABLE edge ADD COLUMN IF NOT EXISTS pending_deny_last_seen timestamptz NULL;
DO $$
DECLARE
    pk text;
    cols text[];
BEGIN
    SELECT c.conname,
           ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)
      INTO pk, cols
      FROM pg_constraint c
     WHERE c.conrelid = 'edge'::regclass AND c.contype = 'p';
    IF cols IS DISTINCT FROM ARRAY['src_ns', 'dst_ns', 'action', 'reporter'] THEN
        IF pk IS NOT NULL THEN
            EXECUTE format('ALTER TABLE edge DROP CONSTRAINT %I', pk);
        END IF;
        ALTER TABLE edge ADD PRIMARY KEY (src_ns, dst_ns, action, reporter);
    END IF;
END
$$;
CREATE TABLE IF NOT EXISTS egress_edge (
    src_ns                 text        NOT NULL,
    dst_type               text        NOT NULL,
    dst_name               text        NOT NULL,
    proto                  text        NOT NULL,
    dst_port               integer     NOT NULL,
    action                 text        NOT NULL,
    reporter               text        NOT NULL,
    first_seen             timestamptz NOT NULL,
    last_seen              timestamptz NOT NULL,
    flow_count             bigint      NOT NULL,
    pending_action         text        NULL,
    pending_deny_last_seen timestamptz NULL,
    PRIMARY KEY (src_ns, dst_type, dst_name, proto, dst_port, action, reporter)
);
