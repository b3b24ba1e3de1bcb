#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""sqlite on an overlay: readers open a lower database before any writer.

    sqlitetest.py prepare DIR            db.sqlite with ROWS rows in DIR
    sqlitetest.py run DB [--writers W] [--txns N] [--readers R]

Readers connect first, half read-only (an O_RDONLY open: on overpass a
passthrough open of the lower file) and half read-write (an O_RDWR open,
so the database is copied up while the read-only readers hold it), and
each reads once.  Then W writers run N transactions each (BEGIN IMMEDIATE,
an insert, every tenth an update), while the readers keep reading in
transactions.  sqlite's locks (POSIX record locks) are all that keeps a
reader from reading a half-written database, and a writer from writing
under a reader.  At the end a fresh connection runs PRAGMA
integrity_check and counts the rows.  One line of figures is printed;
the exit status is 1 on any error, a malformed database, a reader's count
that went down or past the end, or a wrong final count.
"""
import argparse
import os
import sqlite3
import sys
import time

ROWS = 1000


def prepare(d):
    db = sqlite3.connect(os.path.join(d, "db.sqlite"))
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, w INT, i INT, v BLOB)")
    db.execute("CREATE TABLE c (k INT PRIMARY KEY, n INT)")
    db.execute("INSERT INTO c VALUES (0, 0)")
    db.executemany("INSERT INTO t (w, i, v) VALUES (-1, ?, randomblob(100))",
                   [(i,) for i in range(ROWS)])
    db.commit()
    db.close()


def connect(path, ro):
    if ro:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=120,
                               isolation_level=None)
    return sqlite3.connect(path, timeout=120, isolation_level=None)


def reader(path, ro, ready, go, done, report):
    db = connect(path, ro)
    last = db.execute("SELECT count(*) FROM t").fetchone()[0]
    os.write(ready, b"r")
    os.read(go, 1)
    reads = bad = 0
    while True:
        finished = os.path.exists(done)
        db.execute("BEGIN")
        n = db.execute("SELECT count(*) FROM t").fetchone()[0]
        # the counter table moves with the rows: a torn read shows
        c = db.execute("SELECT n FROM c WHERE k = 0").fetchone()[0]
        u = db.execute("SELECT count(*) FROM t WHERE w >= 0").fetchone()[0]
        db.execute("COMMIT")
        reads += 1
        if n < last or c != u or n != ROWS + u:
            bad += 1
        last = n
        if finished:
            break
    os.write(report, f"{'ro' if ro else 'rw'} {reads} {bad} {last}\n".encode())
    db.close()


def writer(path, w, txns, report):
    # sqlite falls back to a read-only connection when O_RDWR fails, and
    # refuses writes when stat(path) no longer shows the file it opened:
    # both would only say "attempt to write a readonly database"
    fd = os.open(path, os.O_RDWR)
    a, b = os.fstat(fd), os.stat(path)
    os.close(fd)
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
        raise RuntimeError(f"stat {b.st_dev}:{b.st_ino} fstat {a.st_dev}:{a.st_ino}")
    db = connect(path, False)
    busy = 0
    for i in range(txns):
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                busy += 1
        db.execute("INSERT INTO t (w, i, v) VALUES (?, ?, randomblob(100))", (w, i))
        db.execute("UPDATE c SET n = n + 1 WHERE k = 0")
        if i % 10 == 0:
            db.execute("UPDATE t SET v = randomblob(120) WHERE id = ?", (1 + i % ROWS,))
        db.execute("COMMIT")
    db.close()
    os.write(report, f"writer {busy}\n".encode())


def spawn(fn, *args):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn(*args)
            code = 0
        except Exception as e:  # noqa: BLE001 - reported
            print(f"child error: {e!r}", file=sys.stderr, flush=True)
        finally:
            os._exit(code)
    return pid


def run(a):
    done = a.db + ".done-flag"
    if os.path.exists(done):
        os.unlink(done)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    rep_r, rep_w = os.pipe()
    t0 = time.monotonic()
    readers = [spawn(reader, a.db, i % 2 == 0, ready_w, go_r, done, rep_w)
               for i in range(a.readers)]
    for _ in readers:
        os.read(ready_r, 1)
    writers = [spawn(writer, a.db, w, a.txns, rep_w) for w in range(a.writers)]
    os.write(go_w, b"g" * len(readers))
    failed = 0
    for p in writers:
        failed += os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) != 0
    t1 = time.monotonic()
    with open(done, "w"):
        pass
    for p in readers:
        failed += os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) != 0
    os.close(rep_w)
    lines = os.read(rep_r, 1 << 20).decode().split("\n")
    os.unlink(done)
    db = sqlite3.connect(a.db)
    check = db.execute("PRAGMA integrity_check").fetchone()[0]
    n = db.execute("SELECT count(*) FROM t").fetchone()[0]
    c = db.execute("SELECT n FROM c").fetchone()[0]
    db.close()
    want = ROWS + a.writers * a.txns
    reads = sum(int(x.split()[1]) for x in lines if x[:2] in ("ro", "rw"))
    bad = sum(int(x.split()[2]) for x in lines if x[:2] in ("ro", "rw"))
    over = [x for x in lines if x[:2] in ("ro", "rw") and int(x.split()[3]) > want]
    busy = sum(int(x.split()[1]) for x in lines if x.startswith("writer"))
    print(f"transactions={a.writers * a.txns} seconds={t1 - t0:.1f} "
          f"reader_transactions={reads} torn_reads={bad} busy_retries={busy} "
          f"integrity={check} rows={n} want={want} counter={c} failed={failed}")
    for x in lines:
        if x[:2] in ("ro", "rw"):
            print("reader", x)
    ok = (check == "ok" and n == want and c == a.writers * a.txns and
          not failed and not bad and not over)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("path")
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--txns", type=int, default=700)
    ap.add_argument("--readers", type=int, default=4)
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.path)
        return 0
    a.db = a.path
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
