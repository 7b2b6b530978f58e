/*
 * aimm-store's SQLite extension: incremental blob I/O as SQL functions.
 *
 * better-sqlite3 binds every Buffer as SQLITE_TRANSIENT (SQLite copies it) and has no blob
 * handles, so storing a large model costs two copies inside SQLite (the bind, then the row
 * record) on top of the caller's buffer. With this extension the row is written with
 * zeroblob(n) and the model then copied straight into its pages, chunk by chunk, through one
 * blob handle (sqlite3_blob_write).
 *
 * Loaded with better-sqlite3's Database#loadExtension: it calls the SQLite that better-sqlite3
 * links (through the sqlite3_api_routines table), never a second copy of SQLite.
 *
 * One handle per connection, opened and closed by the caller around its chunks:
 *   aimm_blob_open(table, column, rowid, writable) -> the blob's size in bytes
 *   aimm_blob_write(offset, data)                  -> the number of bytes written
 *   aimm_blob_read(offset, length)                 -> `length` bytes from `offset`
 *   aimm_blob_close()                              -> 1 if a handle was open, else 0
 * and, with handles of its own, a copy from one blob into another of the same size:
 *   aimm_blob_copy(table, column, rowid, to_table, to_column, to_rowid) -> bytes copied
 * The handle is the "main" database's. SQLite expires it when its row changes; a write or read
 * through an expired handle is an error (SQLITE_ABORT). Every failure is an SQL error with
 * SQLite's message; offsets and lengths outside the blob are refused before any I/O.
 */
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

struct blob_state {
  sqlite3_blob *blob;
};

/* An integer argument: SQLite's INTEGER, or a REAL without a fraction (better-sqlite3 binds every
 * JavaScript number as a REAL). */
static int integer_arg(sqlite3_value *v, sqlite3_int64 *out) {
  int t = sqlite3_value_type(v);
  if (t == SQLITE_INTEGER) {
    *out = sqlite3_value_int64(v);
    return 1;
  }
  if (t == SQLITE_FLOAT) {
    double d = sqlite3_value_double(v);
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(sqlite3_int64)d) {
      *out = (sqlite3_int64)d;
      return 1;
    }
  }
  return 0;
}

static void sqlite_error(sqlite3_context *ctx, int rc) {
  sqlite3_result_error(ctx, sqlite3_errmsg(sqlite3_context_db_handle(ctx)), -1);
  sqlite3_result_error_code(ctx, rc);
}

static void close_state(struct blob_state *state) {
  if (state->blob != 0) {
    sqlite3_blob_close(state->blob);
    state->blob = 0;
  }
}

static void blob_open(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  struct blob_state *state = sqlite3_user_data(ctx);
  const char *table = (const char *)sqlite3_value_text(argv[0]);
  const char *column = (const char *)sqlite3_value_text(argv[1]);
  sqlite3_int64 rowid;
  sqlite3_int64 writable;
  if (table == 0 || column == 0 || !integer_arg(argv[2], &rowid) ||
      !integer_arg(argv[3], &writable)) {
    sqlite3_result_error(ctx, "aimm_blob_open: table, column, rowid and writable are required",
                         -1);
    return;
  }
  if (state->blob != 0) {
    sqlite3_result_error(ctx, "aimm_blob_open: a blob is already open", -1);
    return;
  }
  int rc = sqlite3_blob_open(sqlite3_context_db_handle(ctx), "main", table, column, rowid,
                             writable != 0, &state->blob);
  if (rc != SQLITE_OK) {
    state->blob = 0;
    sqlite_error(ctx, rc);
    return;
  }
  sqlite3_result_int64(ctx, sqlite3_blob_bytes(state->blob));
}

/* The open handle, with `offset` and `n` inside its blob; else an error result and 0. */
static sqlite3_blob *span(sqlite3_context *ctx, sqlite3_value *offset_arg, sqlite3_int64 n,
                          int *offset) {
  struct blob_state *state = sqlite3_user_data(ctx);
  sqlite3_int64 off;
  if (state->blob == 0) {
    sqlite3_result_error(ctx, "aimm_blob: no blob is open", -1);
    return 0;
  }
  if (!integer_arg(offset_arg, &off)) {
    sqlite3_result_error(ctx, "aimm_blob: the offset must be an integer", -1);
    return 0;
  }
  sqlite3_int64 size = sqlite3_blob_bytes(state->blob);
  if (off < 0 || n < 0 || off > size || n > size - off) {
    sqlite3_result_error(ctx, "aimm_blob: offset and length outside the blob", -1);
    return 0;
  }
  *offset = (int)off;
  return state->blob;
}

static void blob_write(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const void *data = sqlite3_value_blob(argv[1]);
  int n = sqlite3_value_bytes(argv[1]);
  int offset;
  sqlite3_blob *blob = span(ctx, argv[0], n, &offset);
  if (blob == 0) return;
  int rc = n == 0 ? SQLITE_OK : sqlite3_blob_write(blob, data, n, offset);
  if (rc != SQLITE_OK) {
    sqlite_error(ctx, rc);
    return;
  }
  sqlite3_result_int(ctx, n);
}

static void blob_read(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3_int64 n;
  if (!integer_arg(argv[1], &n)) {
    sqlite3_result_error(ctx, "aimm_blob_read: the length must be an integer", -1);
    return;
  }
  int offset;
  sqlite3_blob *blob = span(ctx, argv[0], n, &offset);
  if (blob == 0) return;
  void *buf = sqlite3_malloc64(n > 0 ? (sqlite3_uint64)n : 1);
  if (buf == 0) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  int rc = n == 0 ? SQLITE_OK : sqlite3_blob_read(blob, buf, (int)n, offset);
  if (rc != SQLITE_OK) {
    sqlite3_free(buf);
    sqlite_error(ctx, rc);
    return;
  }
  sqlite3_result_blob64(ctx, buf, (sqlite3_uint64)n, sqlite3_free);
}

static void blob_close(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  struct blob_state *state = sqlite3_user_data(ctx);
  int was_open = state->blob != 0;
  close_state(state);
  sqlite3_result_int(ctx, was_open);
}

/* Copies a blob into another of the same size through a 1 MiB buffer (never the whole value). */
static void blob_copy(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_int64 from_row;
  sqlite3_int64 to_row;
  const char *from_table = (const char *)sqlite3_value_text(argv[0]);
  const char *from_column = (const char *)sqlite3_value_text(argv[1]);
  const char *to_table = (const char *)sqlite3_value_text(argv[3]);
  const char *to_column = (const char *)sqlite3_value_text(argv[4]);
  if (from_table == 0 || from_column == 0 || to_table == 0 || to_column == 0 ||
      !integer_arg(argv[2], &from_row) || !integer_arg(argv[5], &to_row)) {
    sqlite3_result_error(ctx, "aimm_blob_copy: tables, columns and rowids are required", -1);
    return;
  }
  sqlite3_blob *from = 0;
  sqlite3_blob *to = 0;
  void *buf = 0;
  int rc = sqlite3_blob_open(db, "main", from_table, from_column, from_row, 0, &from);
  if (rc == SQLITE_OK) rc = sqlite3_blob_open(db, "main", to_table, to_column, to_row, 1, &to);
  if (rc != SQLITE_OK) {
    sqlite_error(ctx, rc);
  } else if (sqlite3_blob_bytes(from) != sqlite3_blob_bytes(to)) {
    sqlite3_result_error(ctx, "aimm_blob_copy: the blobs differ in size", -1);
  } else {
    const int chunk = 1 << 20;
    int size = sqlite3_blob_bytes(from);
    buf = sqlite3_malloc(chunk);
    if (buf == 0) {
      sqlite3_result_error_nomem(ctx);
    } else {
      for (int at = 0; rc == SQLITE_OK && at < size; at += chunk) {
        int n = size - at < chunk ? size - at : chunk;
        rc = sqlite3_blob_read(from, buf, n, at);
        if (rc == SQLITE_OK) rc = sqlite3_blob_write(to, buf, n, at);
      }
      if (rc == SQLITE_OK) sqlite3_result_int(ctx, size);
      else sqlite_error(ctx, rc);
    }
  }
  sqlite3_free(buf);
  if (to != 0) sqlite3_blob_close(to);
  if (from != 0) sqlite3_blob_close(from);
}

static void destroy_state(void *p) {
  close_state(p);
  sqlite3_free(p);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_aimmblobio_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  (void)err;
  SQLITE_EXTENSION_INIT2(api);
  struct blob_state *state = sqlite3_malloc(sizeof *state);
  if (state == 0) return SQLITE_NOMEM;
  state->blob = 0;
  const int flags = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  /* The state is freed (and a handle left open closed) when aimm_blob_open's registration is
   * dropped: at the connection's close, or when the extension is loaded again. The other
   * functions share the pointer without a destructor; none of them can run after that. */
  int rc = sqlite3_create_function_v2(db, "aimm_blob_open", 4, flags, state, blob_open, 0, 0,
                                      destroy_state);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_create_function_v2(db, "aimm_blob_write", 2, flags, state, blob_write, 0, 0, 0);
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "aimm_blob_read", 2, flags, state, blob_read, 0, 0, 0);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "aimm_blob_close", 0, flags, state, blob_close, 0, 0, 0);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "aimm_blob_copy", 6, flags, 0, blob_copy, 0, 0, 0);
  }
  return rc;
}
