-- Sandport check history, schema 1. Times are milliseconds since the Unix
-- epoch (UTC), hours and days are counted from the epoch too, latencies are
-- microseconds. Statuses are 0 healthy, 1 degraded, 2 unhealthy,
-- 3 unavailable, 4 unknown.

-- Connector ids interned to small integers, with the reported status in
-- force and when it began (updated only when it changes).
CREATE TABLE connector (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    reported INTEGER,
    since INTEGER
);

-- Host-side failure kinds ("deadline", "trap", ...), interned.
CREATE TABLE failure (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- One row per check. code = status + 5 * reported + 25 * failure id
-- (0 = none), one byte for the first four failure kinds.
CREATE TABLE point (
    connector INTEGER NOT NULL,
    at INTEGER NOT NULL,
    code INTEGER NOT NULL,
    latency INTEGER NOT NULL,
    PRIMARY KEY (connector, at)
) WITHOUT ROWID;

-- One row per change of a connector's message (at most 1024 bytes); the
-- message in force at a point is the last one at or before it. A rowid
-- table: a row this long would spill to an overflow page of its own in a
-- WITHOUT ROWID table (whose rows stay in-page only up to ~1000 bytes).
CREATE TABLE message (
    id INTEGER PRIMARY KEY,
    connector INTEGER NOT NULL,
    at INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE UNIQUE INDEX message_at ON message (connector, at);

-- Per connector and hour: checks per raw status, kept current with every
-- batch; pending = 1 until the writer has computed the latency figures of
-- the completed hour (again after a late point). hist is the latency
-- histogram: varint pairs (bucket - previous bucket, count).
CREATE TABLE hourly (
    connector INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    healthy INTEGER NOT NULL DEFAULT 0,
    degraded INTEGER NOT NULL DEFAULT 0,
    unhealthy INTEGER NOT NULL DEFAULT 0,
    unavailable INTEGER NOT NULL DEFAULT 0,
    unknown INTEGER NOT NULL DEFAULT 0,
    pending INTEGER NOT NULL DEFAULT 1,
    p50 INTEGER,
    p95 INTEGER,
    max INTEGER,
    hist BLOB,
    PRIMARY KEY (connector, hour)
) WITHOUT ROWID;
CREATE INDEX hourly_pending ON hourly (hour, connector) WHERE pending = 1;

-- Per connector and UTC day: passing and total checks (the 90-day bar and
-- the uptime windows).
CREATE TABLE daily (
    connector INTEGER NOT NULL,
    day INTEGER NOT NULL,
    passing INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (connector, day)
) WITHOUT ROWID;

-- Changes of the reported status, with the message in force then.
CREATE TABLE incident (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    connector INTEGER NOT NULL,
    status INTEGER NOT NULL,
    previous INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE UNIQUE INDEX incident_at ON incident (at, connector);
