CREATE TABLE IF NOT EXISTS edge (
    src_ns     text        NOT NULL,
    dst_ns     text        NOT NULL,
    action     text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    flow_count bigint      NOT NULL,
    PRIMARY KEY (src_ns, dst_ns, action)
);
